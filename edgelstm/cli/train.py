"""`edgelstm train`."""

from __future__ import annotations

from pathlib import Path

import click

from ..models.config import POOLS
from .options import POSITIVE, data_options, echo_err, fit_options


def format_metrics(metrics: dict, task: str) -> str:
    t = metrics["test"]
    if task == "classify":
        line = f"held-out accuracy {t['accuracy']:.3f}, macro-F1 {t['macro_f1']:.3f} ({t['n']} windows)"
    else:
        line = f"held-out RMSE {t['rmse']:.4g}, MAE {t['mae']:.4g} ({t['n']} windows)"
        if "rmse_persistence" in t:
            line += f"; persistence baseline RMSE {t['rmse_persistence']:.4g}"
    return f"{line}; {metrics['protocol']}" if metrics.get("protocol") else line


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@data_options
@click.option(
    "--arch",
    type=click.Choice(["lstm", "gru", "bilstm", "rocket"]),
    default=None,
    help="rocket: MiniRocket's fixed kernels and a ridge head, a .rocket step model for the numpy runtime. "
    "Default: rocket for a classifier over variable-length sequences or windows over 250 samples, unless an option "
    "only the recurrent models take is given (--units, --epochs, --conv, ...); lstm otherwise.",
)
@click.option(
    "--shares",
    type=click.IntRange(min=1),
    default=None,
    help="rocket: about how many threshold-crossing shares the model counts (default 4000; its int8 head is "
    "shares x classes bytes).",
)
@click.option("--units", default=64, show_default=True, help="Units per recurrent layer (per direction).")
@click.option("--layers", default=1, show_default=True, help="Stacked recurrent layers.")
@click.option(
    "--window", type=int, default=None, help="Samples per window (default: an NPZ's own window length, else 100)."
)
@click.option(
    "--stride",
    type=int,
    default=None,
    help="Samples between window starts (default: half a window to classify; 1 to regress or forecast, so "
    "every target is trained on).",
)
@click.option(
    "--val",
    "val_data",
    type=click.Path(path_type=Path),
    default=None,
    help="Your own validation set (read like DATA): early stopping watches it; nothing of DATA is held "
    "out for validation.",
)
@click.option(
    "--test",
    "test_data",
    type=click.Path(path_type=Path),
    default=None,
    help="Your own test set (e.g. an official test split, or unseen subjects): metrics.json scores it; "
    "nothing of DATA is held out as test.",
)
@click.option(
    "--cv",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Cross-validate K folds by subject (else recording) first: mean ± sd over folds in metrics.json; the saved "
    "model is then trained on all of DATA.",
)
@click.option(
    "--split-by",
    type=click.Choice(["subject", "recording", "time"]),
    default="recording",
    show_default=True,
    help="What validation and test never share with training: subjects (NPZ 'subjects' or --subject-col), "
    "recordings, or the last part of each recording in time.",
)
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
@click.option(
    "--frame",
    type=int,
    default=None,
    help="Samples per step: the model steps over frames of S samples (S times fewer steps). Default: 1, or about "
    "window/125 for windows over 250 samples.",
)
@click.option(
    "--conv",
    default=None,
    metavar="K:F[xN]",
    help="Causal convolutional front-end before the recurrent layers: kernel K, F filters, N layers (e.g. 5:32x2). "
    "Default: none; 5:32 for a classifier over long series or variable-length sequences (none: turn it off).",
)
@click.option(
    "--pool",
    type=click.Choice(list(POOLS)),
    default=None,
    help="What the output layer sees: the last step's output, the running maximum of every step's output "
    "(streamed as one more state), or that and the running maximum of the --conv front-end's features (maxconv). "
    "Default: last; maxconv for a classifier over long series (max with --conv none) or variable-length "
    "sequences.",
)
@click.option(
    "--input-map",
    type=click.Choice(["auto", "linear", "compand", "quantile"]),
    default=None,
    help="Classification: how raw channels are mapped before standardization. auto (the default): channels "
    "heavy-tailed by int8's rule through their training quantiles onto a standard normal, the others linearly; "
    "linear; compand (heavy-tailed channels signed-log companded, the default before); quantile (every channel).",
)
@fit_options
@click.option("--seed", default=0, show_default=True)
@click.option("--rate", type=POSITIVE, default=None, help="Sample rate in Hz (default: from a time column).")
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Model directory to write.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the model directory -o if there is one (what was exported from it then no longer matches).",
)
def train(data: Path, spec, out: Path, overwrite: bool, rate, val_data, test_data, cv: int, **opts) -> None:
    """Train an LSTM, GRU, BiLSTM or rocket classifier on windowed multichannel time series (CSV, folder of CSVs,
    or NPZ)."""
    from ..data.dataset import load
    from ..models.config import parse_conv
    from ..models.modeldir import check_replaceable
    from ..train.crossval import train_cv
    from ..train.fit import TrainOptions
    from ..train.fit import train as run_train

    check_replaceable(out, overwrite)  # before any work: not a file, not under one, writable; replaced if asked
    opts["conv"] = parse_conv(opts["conv"]) if opts["conv"] is not None else None  # None: the recipe's
    # absolute paths into config.json: the model directory then works from any folder (quantize, evaluate)
    ds, val, test = (load(p.absolute(), spec) if p else None for p in (data, val_data, test_data))
    if rate:
        ds.sample_rate = rate
    if opts["arch"] is None and opts["shares"] is not None:
        opts["arch"] = "rocket"  # they sized a rocket model
    elif opts["arch"] is None and recurrent_options_given(click.get_current_context()):
        opts["arch"] = "lstm"  # they asked for what only a recurrent model takes
    options = TrainOptions(**opts)
    options.resolve(ds, val, test)  # the arch, where it was left to the data (fit.default_arch)
    if cv:  # a recurrent or a rocket model
        metrics = train_cv(ds, options, out, cv, progress=echo_err, val=val, test=test, overwrite=overwrite)
    elif options.arch == "rocket":
        from ..train.rocket import train_rocket

        metrics = train_rocket(ds, options, out, echo_err, val, test, overwrite)
    else:
        metrics = run_train(ds, options, out, echo_err, val, test, overwrite)
    if "cv" in metrics:
        click.echo(f"{out}: {format_cv(metrics['cv'], opts['task'])}")
    click.echo(f"{out}: {format_metrics(metrics, opts['task'])}")


# Options only the recurrent models take (besides fit_options'): given without --arch, they ask for an LSTM.
RECURRENT_ONLY = ("units", "layers", "merge", "dropout", "peephole", "frame", "conv", "pool", "horizon")


def recurrent_options_given(ctx: click.Context) -> bool:
    from click.core import ParameterSource

    names = set(RECURRENT_ONLY) | {p.name for p in fit_options(lambda: None).__click_params__}
    return any(ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE for n in names)


def format_cv(cv: dict, task: str) -> str:
    names = {"accuracy": "accuracy", "macro_f1": "macro-F1", "rmse": "RMSE", "mae": "MAE"}
    keys = ("accuracy", "macro_f1") if task == "classify" else ("rmse", "mae")
    figures = ", ".join(f"{names[k]} {cv[k]['mean']:.3f} ± {cv[k]['sd']:.3f}" for k in keys)
    return f"cross-validated {figures} over {cv['folds']} folds by {cv['by']} (mean ± sd)"
