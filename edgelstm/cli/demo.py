"""`edgelstm demo`."""

from __future__ import annotations

from pathlib import Path

import click

from .options import echo_err


@click.command()
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default="edgelstm-demo",
    show_default=True,
    help="Folder for the sample data, models and reports.",
)
@click.option("--epochs", default=30, show_default=True)
@click.option(
    "--distill",
    is_flag=True,
    help="Also train a BiLSTM teacher and distill it into a small GRU student that can stream.",
)
def demo(out: Path, epochs: int, distill: bool) -> None:
    """Generate sample IMU data, train a small LSTM, export, quantize and stream it, and show where everything went."""
    from ..demo import run_demo

    paths = run_demo(out, echo_err, epochs=epochs, distill=distill)
    for name, p in paths.items():
        click.echo(f"{name}: {p}")
