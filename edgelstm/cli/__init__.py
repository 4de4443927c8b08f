"""The `edgelstm` command: a lazy Click group, so `--help` and `run` never import the training stack."""

from __future__ import annotations

import importlib

import click

from .. import __version__
from ..errors import EdgeLSTMError

COMMANDS = {
    "bench": "edgelstm.cli.bench:bench",
    "check": "edgelstm.cli.check:check",
    "convert": "edgelstm.cli.convert:convert",
    "demo": "edgelstm.cli.demo:demo",
    "deploy": "edgelstm.cli.deploy:deploy",
    "distill": "edgelstm.cli.distill:distill",
    "evaluate": "edgelstm.cli.evaluate:evaluate",
    "inspect": "edgelstm.cli.check:inspect",
    "quantize": "edgelstm.cli.quantize:quantize",
    "remote": "edgelstm.cli.remote:remote",
    "run": "edgelstm.cli.run:run",
    "sample": "edgelstm.cli.data:sample",
    "train": "edgelstm.cli.train:train",
    "tune": "edgelstm.cli.tune:tune",
}


class UserError(click.ClickException):
    """A library error shown as one line, with the library's exit code (2 for bad input)."""

    def __init__(self, ex: EdgeLSTMError) -> None:
        super().__init__(str(ex))
        self.exit_code = ex.exit_code


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdgeLSTMError as ex:
            raise UserError(ex) from None
        except ImportError as ex:
            from .._deps import missing_extra

            missing = missing_extra(ex)
            if missing is None:
                raise
            raise UserError(missing) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgelstm")
def main() -> None:
    """Small recurrent models (LSTM, GRU, BiLSTM) from sensor data to a device that runs them in real time."""
    terminate_cleanly()


def terminate_cleanly() -> None:
    """SIGTERM as SystemExit(143), as Ctrl-C is KeyboardInterrupt: every command's `finally` blocks then remove
    their temporary files and stop their converter worker (Python's default SIGTERM skips all of that)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:

        def handler(signum, frame):
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, handler)
