"""One error family: the library raises these, the CLI turns them into a one-line message and an exit code."""

from __future__ import annotations


class EdgeLSTMError(Exception):
    """Base of every error a user can cause; `exit_code` is what the CLI exits with."""

    exit_code = 2


class InputError(EdgeLSTMError):
    """Bad data or bad arguments: names the file (and line) where it applies."""


class TrainingDiverged(InputError):
    """The loss became NaN or infinite during training; nothing is written (exit 2)."""


class ModelDirError(EdgeLSTMError):
    """A model directory that is missing, not ours, or from an incompatible version."""


class MissingExtraError(EdgeLSTMError):
    """A heavy optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"this command needs '{module}', which is not installed: pip install 'edgelstm[{extra}]'")
        self.module = module
        self.extra = extra


class ConversionError(EdgeLSTMError):
    """The converter refused the model; the message names the model, the mode and what to try instead."""


class ConverterCrash(ConversionError):
    """The converter process died (a signal: TensorFlow's calibrator segfaults on some recurrent graphs). Its own
    exit code, 3, so a script can tell a crash of the tool chain from bad input (2)."""

    exit_code = 3


class DeployError(EdgeLSTMError):
    """A deploy or remote step failed (unreachable host, refused model, failed upload or health check)."""

    exit_code = 1


class HostKeyError(DeployError):
    """A host key that is unknown (and not trusted with --trust-new-host) or does not match known_hosts."""


class ModelFileError(ModelDirError):
    """A model file that is missing, damaged, or has no (or bad) edgelstm metadata; the message names the file."""


class MetadataError(ModelDirError):
    """The model file lacks the edgelstm metadata the runner needs; the message names what is missing."""


class RuntimeUnavailable(EdgeLSTMError):
    """No usable interpreter (or delegate) is installed; the message says what to install."""


class BadSample(InputError):
    """One sample that cannot be used; fatal only in strict mode."""


class StopRequested(Exception):
    """Not an error: SIGINT/SIGTERM asking the device runner to flush what it wrote and exit 0."""
