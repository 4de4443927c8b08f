"""`edgelstm run`: the device runtime's own argument parser, so `edgelstm run` = `python -m edgelstm.runtime`."""

from __future__ import annotations

import sys

import click


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(args: tuple[str, ...]) -> None:
    """Stream samples (stdin, file:, udp://, serial://) through a model; `edgelstm run --help` for options."""
    from ..runtime.__main__ import main

    code = main(list(args), prog="edgelstm run")
    sys.stdout.flush()
    if code:
        sys.exit(code)
