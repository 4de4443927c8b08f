"""`edgelstm evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import echo_err


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path), required=False)
@click.option(
    "--split",
    type=click.Choice(["all", "test"]),
    default="all",
    show_default=True,
    help="all: every window of DATA; test: the held-out test split recorded at training (no DATA).",
)
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="--split test for a .tflite/.onnx: the model directory it was made from [default: beside the file].",
)
@click.option(
    "--stride",
    type=int,
    default=None,
    help="Samples between windows [default: the training stride to classify, 1 for regression and forecasts].",
)
@click.option("--season", type=int, default=None, help="Forecast: also score the seasonal-naive forecast (samples).")
@click.option(
    "--predictions", type=click.Path(path_type=Path), default=None, help="Write per-window truth/prediction/scores CSV."
)
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
@click.option(
    "--data",
    "training_data",
    type=click.Path(path_type=Path),
    default=None,
    help="--split test: the training data, where the path config.json records is not there (a model dir moved).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(
    model: Path,
    data: Path | None,
    split: str,
    model_dir,
    stride,
    season,
    predictions,
    label_col: str | None,
    group_col: str | None,
    training_data: Path | None,
    as_json: bool,
) -> None:
    """Score a model (Keras dir, .tflite or .onnx) on windows of DATA, with the model's own normalization; a
    .tflite or .onnx runs through the device runner, as on the device."""
    from ..evaluate.predict import evaluate_data

    m = evaluate_data(
        model,
        data,
        label_col=label_col,
        group_col=group_col,
        progress=echo_err,
        split=split,
        stride=stride,
        season=season,
        predictions=predictions,
        model_dir=model_dir,
        training_data=training_data,
    )
    if as_json:
        click.echo(json.dumps(m, indent=2))
        return
    for line in result_lines(str(model), m):
        click.echo(line)


def result_lines(model: str, m: dict) -> list[str]:
    where = "the held-out test split" if m["split"] == "test" else "every window of DATA"
    if "accuracy" in m:
        lines = [f"{model}: accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f} ({m['n']} windows, {where})"]
        labels = m["labels"]
        corner = "truth / pred"
        width = max(len(s) for s in [*labels, corner])
        cell = max(5, *(len(s) for s in labels))
        lines.append("confusion (rows: truth, columns: prediction):")
        lines.append(f"  {corner.ljust(width)}  " + "  ".join(s.rjust(cell) for s in labels))
        for lab, row in zip(labels, m["confusion"]):
            lines.append(f"  {lab.ljust(width)}  " + "  ".join(str(v).rjust(cell) for v in row))
    else:
        lines = [f"{model}: RMSE {m['rmse']:.4g}, MAE {m['mae']:.4g} ({m['n']} windows, {where}; data units)"]
        if "rmse_persistence" in m:
            lines.append(
                f"  persistence (next = now): RMSE {m['rmse_persistence']:.4g}, MAE {m['mae_persistence']:.4g}"
            )
        if "rmse_seasonal_naive" in m:
            lines.append(
                f"  seasonal-naive (season {m['season']}): RMSE {m['rmse_seasonal_naive']:.4g}, "
                f"MAE {m['mae_seasonal_naive']:.4g}"
            )
    if m.get("predictions"):
        lines.append(f"predictions: {m['predictions']}")
    return lines
