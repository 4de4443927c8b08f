"""Device side: stream samples through a converted model with numpy and one interpreter (never TensorFlow)."""

from __future__ import annotations

from ..errors import MetadataError, RuntimeUnavailable
from .interpreter import Interpreter, open_interpreter
from .stream import ModelInfo, Result, Runner

__all__ = ["Interpreter", "MetadataError", "ModelInfo", "Result", "Runner", "RuntimeUnavailable", "open_interpreter"]
