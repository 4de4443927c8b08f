"""`edgelstm quantize`."""

from __future__ import annotations

from pathlib import Path

import click

from .options import echo_err


@click.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--mode", type=click.Choice(["int8", "int16x8", "dynamic", "float16"]), default=None,
              help="Quantization mode (default: int8, or the target's preferred mode).")
@click.option("--calibration", default="default", show_default=True,
              help="Calibration recipe name (calibration/*.toml), a .toml path, or an .npz of windows X [N, T, F].")
@click.option("--target", default=None, help="Target profile (targets/*.toml): picks mode, kind and I/O types, "
              "then checks the result against the target.")
@click.option("--kind", type=click.Choice(["sequence", "step", "both"]), default=None,
              help="Which model to quantize (default: step, or the target's preferred kind).")
@click.option("--format", "fmt", type=click.Choice(["tflite", "onnx"]), default=None,
              help="tflite (TF converter) or onnx (ONNX Runtime: static QDQ int8, or dynamic).")
@click.option("--io", type=click.Choice(["float", "int8"]), default=None,
              help="int8: integer tensors at the model boundary (state requantized by the runner); default float.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Folder for the files and the report (default: the model directory).")
@click.option("--no-report", is_flag=True, help="Skip the accuracy report on the held-out split.")
def quantize(model_dir: Path, mode, calibration, target, kind, fmt, io, out, no_report) -> None:
    """Quantize a trained model (in a subprocess) and write an accuracy report (report.json, report.html, PNGs)."""
    from ..quantize import quantize_command

    result = quantize_command(model_dir, mode=mode, calibration=calibration, target=target, kind=kind, fmt=fmt,
                              io=io, out=out, report=not no_report, progress=echo_err)
    for line in result["lines"]:
        click.echo(line)
    if result.get("violations"):
        raise SystemExit(1)
