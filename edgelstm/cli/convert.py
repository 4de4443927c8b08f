"""`edgelstm convert`."""

from __future__ import annotations

from pathlib import Path

import click

from .options import echo_err


@click.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "to",
    type=click.Choice(["tflite", "onnx"]),
    default="tflite",
    show_default=True,
    help="Output format (ONNX: tf2onnx, opset 17).",
)
@click.option(
    "--kind",
    type=click.Choice(["sequence", "step", "both"]),
    default="both",
    show_default=True,
    help="Whole-window sequence model, external-state step model, or both.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the files (default: the model directory).",
)
def convert(model_dir: Path, to: str, kind: str, out: Path | None) -> None:
    """Export a trained model as float .tflite or .onnx (sequence.* and step.*), with edgelstm metadata inside.

    Each conversion runs in a subprocess, so a converter crash becomes an error message.
    """
    from ..export.convert import convert as run_convert

    for path in run_convert(model_dir, to, kind, out, progress=echo_err):
        click.echo(f"{path} ({path.stat().st_size / 1024:.1f} KB)")
