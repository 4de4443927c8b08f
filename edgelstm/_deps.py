"""Imports of heavy optional backends, behind an error that names the extra to install."""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import contextmanager
from types import ModuleType

from .errors import MissingExtraError

# The one map from an optional module (top-level name) to the extra that installs it (pyproject.toml).
EXTRAS = {
    "tensorflow": "train",
    "tf_keras": "train",
    "tf2onnx": "train",
    "matplotlib": "train",
    "ai_edge_litert": "device",
    "serial": "device",
    "onnxruntime": "onnx",
    "onnx": "onnx",
    "paramiko": "deploy",
    "yaml": "deploy",
    "ansible": "ansible",
    "tflite_micro": "micro",
}


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import `module`, or raise MissingExtraError naming its extra (from EXTRAS unless given)."""
    try:
        return importlib.import_module(module)
    except ImportError as ex:
        if ex.name and module.split(".")[0] != ex.name.split(".")[0]:
            raise  # the module exists but one of its own imports is broken: show that, not a wrong hint
        raise MissingExtraError(module, extra or EXTRAS[module.split(".")[0]]) from None


def missing_extra(ex: BaseException) -> MissingExtraError | None:
    """The MissingExtraError for an ImportError of an optional module that escaped a command, else None: the CLI's
    net, so a missing extra is one line even where no require() guards the import."""
    name = getattr(ex, "name", None) or ""
    if not isinstance(ex, ImportError) or name.split(".")[0] not in EXTRAS:
        return None
    return MissingExtraError(name, EXTRAS[name.split(".")[0]])


@contextmanager
def quiet_native_stderr():
    """Silence what native code writes to fd 2 (TensorFlow's CUDA probing on a CPU machine) for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def tensorflow() -> ModuleType:
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        with quiet_native_stderr():
            require("tensorflow", "train")
    return sys.modules["tensorflow"]


def keras() -> ModuleType:
    """tf_keras (Keras 2): the only Keras whose LSTM the TFLite converter fuses and calibrates (docs/design.md)."""
    tensorflow()
    if "tf_keras" not in sys.modules:
        with quiet_native_stderr():
            require("tf_keras", "train")
    return sys.modules["tf_keras"]
