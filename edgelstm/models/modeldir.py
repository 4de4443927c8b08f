"""A model directory: config.json (with normalization and labels), model.keras, metrics and plots.

It is written to a temporary sibling and renamed into place, so a failed run never leaves half a model; an
existing model directory is replaced only when asked (`--overwrite`): files exported from it would no longer match.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError, ModelDirError
from ..runtime.quantile import table_problem
from .config import ModelConfig

KERAS_FILE = "model.keras"
ROCKET_FILE = "model.rocket"  # a rocket model directory's float model (train/rocket.py), in place of model.keras


def check_replaceable(out: str | Path, overwrite: bool = False) -> None:
    """Refuse, before any long work, to replace a non-empty folder that is not a model directory, or a model
    directory unless `overwrite` (what was exported from it would silently stop matching)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "config.json").is_file())):
        raise InputError(f"{out}: exists and is not an edgelstm model directory; refusing to overwrite it")
    if not overwrite and (out / "config.json").is_file():
        raise InputError(
            f"{out}: a model directory is already there (files exported from it would no longer match); "
            "pass --overwrite to replace it, or choose another -o"
        )
    check_output_dir(out)


def umask() -> int:
    """The process's umask (os.umask can only be read by setting it; set straight back)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def check_output_dir(out: str | Path) -> None:
    """Before any work: `out` must be a folder we can write into, or one we can create — not a file, not under a
    file, not on a read-only or virtual filesystem (/proc). Probed by creating (and removing) a temporary entry,
    since permission bits say nothing for root or /proc; nothing is left behind."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    base = out
    while not base.exists():
        if base.is_symlink():
            raise InputError(f"{out}: {base} is a dangling symbolic link")
        base = base.parent
    if not base.is_dir():
        raise InputError(f"{out}: {base} is a file, so nothing can be written under it")
    try:
        probe = tempfile.mkdtemp(prefix=".edgelstm-probe-", dir=base)
    except OSError as ex:
        raise InputError(f"{out}: cannot write in {base} ({ex.strerror})") from None
    Path(probe).rmdir()


@contextmanager
def staging(out: str | Path, overwrite: bool = False):
    """Yield a temporary directory that replaces `out` only if the block completes (an existing model directory
    only if `overwrite`). mkdtemp makes it 0700; the model directory gets the mode mkdir would give it (the
    umask's), like every file in it."""
    out = Path(out)
    check_replaceable(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        tmp.chmod(0o777 & ~umask())
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
    """The directory's config.json, checked for consistency (`check_consistent`)."""
    cfg = ModelConfig.load(Path(model_dir))
    check_consistent(cfg, Path(model_dir) / "config.json")
    return cfg


def check_consistent(cfg: ModelConfig, where: str | Path) -> None:
    """Refuse a config.json whose parts disagree: one normalization value for six channels, or no labels for a
    classifier, converted with exit 0 before and the runner then skipped every good line or refused the model."""
    import math

    problems = []
    for name in ("units", "layers", "window", "n_features", "n_outputs", "stride", "horizon"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            problems.append(f"{name} must be a whole number of at least 1, not {v!r}")
    F = cfg.n_features
    for name in ("norm_mean", "norm_std"):
        v = getattr(cfg, name)
        if not isinstance(v, list) or len(v) != F:
            problems.append(f"{name} has {len(v) if isinstance(v, list) else v!r} values for {F} features")
        elif not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
            problems.append(f"{name} holds a value that is not a finite number")
    if isinstance(cfg.norm_std, list) and any(isinstance(x, (int, float)) and x <= 0 for x in cfg.norm_std):
        problems.append("norm_std holds a value of 0 or less")
    for name in ("compand_center", "compand_scale"):
        v = getattr(cfg, name)
        if not isinstance(v, list) or len(v) not in (0, F):
            problems.append(f"{name} has {len(v) if isinstance(v, list) else v!r} values for {F} features")
        elif not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
            problems.append(f"{name} holds a value that is not a finite number")
    if isinstance(cfg.compand_scale, list) and any(isinstance(x, (int, float)) and x < 0 for x in cfg.compand_scale):
        problems.append("compand_scale holds a negative value")
    why = table_problem(cfg.quantile_knots, cfg.quantile_values, F)
    if why:
        problems.append(why)
    if cfg.channels and len(cfg.channels) != F:
        problems.append(f"channels names {len(cfg.channels)} channels for {F} features")
    if cfg.task == "classify" and len(cfg.labels) != cfg.n_outputs:
        problems.append(f"labels names {len(cfg.labels)} classes for {cfg.n_outputs} outputs")
    if len(cfg.target_mean) != len(cfg.target_std):
        problems.append(f"target_mean has {len(cfg.target_mean)} values, target_std {len(cfg.target_std)}")
    elif not all(isinstance(x, (int, float)) and math.isfinite(x) for x in cfg.target_mean + cfg.target_std):
        problems.append("target_mean/target_std hold a value that is not a finite number")
    if problems:
        raise ModelDirError(f"{where}: inconsistent model configuration: {'; '.join(problems)}")


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
