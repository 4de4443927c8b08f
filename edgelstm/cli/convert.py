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
    type=click.Choice(["tflite", "onnx", "c", "c-array"]),
    default="tflite",
    show_default=True,
    help="Output format (ONNX: tf2onnx, opset 17; c: the step model as a C99 folder; c-array: the step .tflite as "
    "a C header for TFLite Micro, with its measured arena; docs/microcontrollers.md).",
)
@click.option(
    "--mode",
    type=click.Choice(["float", "int8"]),
    default="float",
    show_default=True,
    help="--to c: the arithmetic of the C hot path; --to c-array: which step .tflite to embed.",
)
@click.option("--name", default="model", show_default=True, help="--to c/c-array: prefix of the files and symbols.")
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
def convert(model_dir: Path, to: str, kind: str, out: Path | None, mode: str, name: str) -> None:
    """Export a trained model as float .tflite or .onnx (sequence.* and step.*), with edgelstm metadata inside,
    or as C (--to c: PREFIX.h, PREFIX.c, example/stream_main.c in -o, default MODEL_DIR/c; --to c-array: the step
    .tflite as PREFIX.h in -o, default MODEL_DIR/c-array; MODEL_DIR may also be a .tflite file there).

    Each conversion runs in a subprocess, so a converter crash becomes an error message.
    """
    from ..export.convert import convert as run_convert

    if to == "c":
        from ..export.convert import write_c

        folder = write_c(model_dir, out or model_dir / "c", name, mode)
        for f in sorted(p for p in folder.path.rglob("*") if p.is_file()):
            click.echo(f"{f} ({f.stat().st_size / 1024:.1f} KB)")
        click.echo(f"build: cd {folder.path} && cc -std=c99 -O2 *.c example/*.c -lm -o stream")
        return
    if to == "c-array":
        from ..export.carray import write_c_array

        header, arena = write_c_array(model_dir, out, name, mode, progress=echo_err)
        click.echo(f"{header} ({header.stat().st_size / 1024:.1f} KB); TFLite Micro arena: {arena} B (measured)")
        return

    for path in run_convert(model_dir, to, kind, out, progress=echo_err):
        click.echo(f"{path} ({path.stat().st_size / 1024:.1f} KB)")
