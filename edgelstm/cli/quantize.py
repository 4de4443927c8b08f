"""`edgelstm quantize`."""

from __future__ import annotations

from pathlib import Path

import click

from ..capabilities import QUANTIZED
from .options import echo_err


@click.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(QUANTIZED),
    default=None,
    help="Quantization mode (default: int8, or the target's preferred mode).",
)
@click.option(
    "--calibration",
    default="default",
    show_default=True,
    help="Calibration recipe name (calibration/*.toml), a .toml path, or an .npz of windows X [N, T, F].",
)
@click.option(
    "--target",
    default=None,
    help="Target profile (targets/*.toml): picks mode, kind and I/O types, then checks the result against the target.",
)
@click.option(
    "--kind",
    type=click.Choice(["sequence", "step", "both"]),
    default=None,
    help="Which model to quantize (default: step, or the target's preferred kind).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tflite", "onnx", "rocket"]),
    default=None,
    help="tflite (TF converter) or onnx (ONNX Runtime: static QDQ int8, or dynamic); rocket, a rocket model's "
    "own form and its default.",
)
@click.option(
    "--io",
    type=click.Choice(["float", "int8"]),
    default=None,
    help="int8: integer tensors at the model boundary (state requantized by the runner); default float.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the files and the report (default: the model directory).",
)
@click.option("--no-report", is_flag=True, help="Skip the accuracy report on the held-out split.")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="The training data, where the path config.json records is not there (a model dir moved elsewhere).",
)
def quantize(model_dir: Path, mode, calibration, target, kind, fmt, io, out, no_report, data) -> None:
    """Quantize a trained model (in a subprocess) and write an accuracy report (report.json, report.html, PNGs)."""
    from ..export.quantize import quantize_with_report

    result = quantize_with_report(
        model_dir,
        mode=mode,
        calibration=calibration,
        target=target,
        kind=kind,
        fmt=fmt,
        io=io,
        out=out,
        report=not no_report,
        progress=echo_err,
        data=data,
    )
    for line in result_lines(result):
        click.echo(line)
    if result.violations:
        raise SystemExit(1)


def result_lines(result) -> list[str]:
    """A QuantizeResult as `edgelstm quantize` (and the demo) print it."""
    lines = [f"{p} ({p.stat().st_size / 1024:.1f} KB)" for p in result.files] + list(result.notes)
    lines += [f"not made: {line}" for line in result.not_made]
    rep = result.report
    if rep is not None:
        ref = rep["reference"]["metrics"]
        for e in rep["models"]:
            v = e["vs_reference"]
            parts = [f"{e['file']}:"]
            if "argmax_agreement" in v:
                parts.append(
                    f"accuracy {e['metrics']['accuracy']:.3f} (float {ref['accuracy']:.3f}),"
                    f" argmax agreement {v['argmax_agreement']:.1%},"
                )
            else:
                parts.append(f"RMSE {e['metrics']['rmse']:.4g} (float {ref['rmse']:.4g}),")
            parts.append(f"max |Δ| {v['max_abs_delta']:.3g}")
            lines.append(" ".join(parts))
            lines += [w for w in result.warnings if w.startswith(f"warning: {e['file']} ")]
        lines.append(f"report: {result.report_path} and {result.report_path.with_suffix('.html')}")
    for c in result.checks:
        lines += [f"warning: {w}" for w in c.warnings]
        lines.append(f"{c.file.name}: {'passes' if not c.violations else 'FAILS'} target {result.target}")
        lines += [f"  {x}" for x in c.violations]
    return lines
