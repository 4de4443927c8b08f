"""One error family: the library raises these, the CLI turns them into a one-line message and an exit code."""

from __future__ import annotations


class EdgeLSTMError(Exception):
    """Base of every error a user can cause; `exit_code` is what the CLI exits with."""

    exit_code = 2


class InputError(EdgeLSTMError):
    """Bad data or bad arguments: names the file (and line) where it applies."""


class ModelDirError(EdgeLSTMError):
    """A model directory that is missing, not ours, or from an incompatible version."""


class MissingExtraError(EdgeLSTMError):
    """A heavy optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this command needs '{module}', which is not installed: pip install 'edgelstm[{extra}]'"
        )
        self.module = module
        self.extra = extra


class DeployError(EdgeLSTMError):
    """A deploy or remote step failed (unreachable host, refused model, failed upload or health check)."""

    exit_code = 1


class HostKeyError(DeployError):
    """A host key that is unknown (and not trusted with --trust-new-host) or does not match known_hosts."""


class ConversionError(EdgeLSTMError):
    """The converter failed or crashed; the message names the model, the mode and what to try instead."""
