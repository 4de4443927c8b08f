"""A model directory: config.json (with normalization and labels), model.keras, metrics and plots.

It is written to a temporary sibling and renamed into place, so a failed run never leaves half a model.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError, ModelDirError
from .config import ModelConfig

KERAS_FILE = "model.keras"


def check_replaceable(out: str | Path) -> None:
    """Refuse, before any long work, to replace a non-empty folder that is not a model directory."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "config.json").is_file())):
        raise InputError(f"{out}: exists and is not an edgelstm model directory; refusing to overwrite it")


@contextmanager
def staging(out: str | Path):
    """Yield a temporary directory that replaces `out` only if the block completes."""
    out = Path(out)
    check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}.old")
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def load_config(model_dir: str | Path) -> ModelConfig:
    return ModelConfig.load(Path(model_dir))


def load_keras(model_dir: str | Path):
    """(config, Keras model) of a model directory."""
    from .._deps import keras
    from .build import CUSTOM_OBJECTS

    cfg = load_config(model_dir)
    path = Path(model_dir) / KERAS_FILE
    if not path.is_file():
        raise ModelDirError(f"{model_dir}: no {KERAS_FILE} in this model directory")
    try:
        model = keras().models.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
    except Exception as ex:  # Keras raises many types for a damaged file
        raise ModelDirError(f"{path}: cannot load the Keras model ({type(ex).__name__}: {ex})") from None
    return cfg, model
