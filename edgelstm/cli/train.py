"""`edgelstm train`."""

from __future__ import annotations

from pathlib import Path

import click

from .options import data_options, echo_err, fit_options


def format_metrics(metrics: dict, task: str) -> str:
    t = metrics["test"]
    if task == "classify":
        return f"held-out accuracy {t['accuracy']:.3f}, macro-F1 {t['macro_f1']:.3f} ({t['n']} windows)"
    line = f"held-out RMSE {t['rmse']:.4g}, MAE {t['mae']:.4g} ({t['n']} windows)"
    if "rmse_persistence" in t:
        line += f"; persistence baseline RMSE {t['rmse_persistence']:.4g}"
    return line


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@data_options
@click.option("--arch", type=click.Choice(["lstm", "gru", "bilstm"]), default="lstm", show_default=True)
@click.option("--units", default=64, show_default=True, help="Units per recurrent layer (per direction).")
@click.option("--layers", default=1, show_default=True, help="Stacked recurrent layers.")
@click.option("--window", default=100, show_default=True, help="Samples per window.")
@click.option("--stride", default=50, show_default=True, help="Samples between window starts.")
@click.option("--horizon", default=1, show_default=True, help="Forecast: steps ahead to predict.")
@click.option(
    "--merge",
    type=click.Choice(["concat", "sum"]),
    default="concat",
    show_default=True,
    help="BiLSTM: how the two directions are merged.",
)
@click.option("--dropout", default=0.0, show_default=True, help="Dropout after each recurrent layer.")
@click.option("--peephole", is_flag=True, help="LSTM whose gates also see the cell state.")
@fit_options
@click.option("--seed", default=0, show_default=True)
@click.option("--rate", type=float, default=None, help="Sample rate in Hz (default: from a time column).")
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Model directory to write.")
def train(data: Path, spec, out: Path, rate: float | None, **opts) -> None:
    """Train an LSTM, GRU or BiLSTM on windowed multichannel time series (CSV, folder of CSVs, or NPZ)."""
    from ..data.dataset import load
    from ..train.fit import TrainOptions
    from ..train.fit import train as run_train

    ds = load(data, spec)
    if rate:
        ds.sample_rate = rate
    metrics = run_train(ds, TrainOptions(**opts), out, progress=echo_err)
    click.echo(f"{out}: {format_metrics(metrics, opts['task'])}")
