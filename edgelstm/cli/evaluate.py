"""`edgelstm evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import echo_err


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option(
    "--label-col",
    default=None,
    help="CSV column holding the class or target [default: the model's training column, else label].",
)
@click.option(
    "--group-col",
    default=None,
    help="CSV column naming the recording [default: the model's training column, else recording].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model: Path, data: Path, label_col: str | None, group_col: str | None, as_json: bool) -> None:
    """Score a model (Keras dir, .tflite or .onnx) on every window of DATA, with the model's own normalization."""
    from ..evaluate.predict import evaluate_data

    m = evaluate_data(model, data, label_col=label_col, group_col=group_col, progress=echo_err)
    if as_json:
        click.echo(json.dumps(m, indent=2))
    elif "accuracy" in m:
        click.echo(f"{model}: accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f} ({m['n']} windows)")
    else:
        click.echo(f"{model}: RMSE {m['rmse']:.4g}, MAE {m['mae']:.4g} ({m['n']} windows)")
