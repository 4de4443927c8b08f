"""Option groups shared by several commands."""

from __future__ import annotations

import functools
import math

import click


def data_options(f):
    """How to read DATA: which columns are labels, targets, recordings, channels; what to do with NaN."""

    @click.option(
        "--task",
        type=click.Choice(["classify", "regress", "forecast"]),
        default="classify",
        show_default=True,
        help="Classify windows, regress a target, or forecast channels ahead.",
    )
    @click.option(
        "--label-col",
        default="label",
        show_default=True,
        help="CSV column holding the class (classify) or the target (regress).",
    )
    @click.option(
        "--target-col",
        "target_cols",
        multiple=True,
        help="Target column(s) for regress; channel(s) to forecast (default: all).",
    )
    @click.option(
        "--group-col",
        default="recording",
        show_default=True,
        help="CSV column naming the recording; splits never cut across one.",
    )
    @click.option(
        "--subject-col",
        default=None,
        help="CSV column naming the subject (or device) of each recording, for --split-by subject.",
    )
    @click.option("--channels", default="", help="Comma-separated channel columns (default: all numeric others).")
    @click.option(
        "--nan",
        type=click.Choice(["error", "drop", "interpolate"]),
        default="error",
        show_default=True,
        help="What to do with NaN/inf values in CSV data.",
    )
    @click.option(
        "--sequences",
        is_flag=True,
        help="Each recording (a CSV of a folder, or a recording id) is one sequence of its own length, with one "
        "label: padded and masked in training, stepped from zero state (instead of cut into windows).",
    )
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        from ..data.dataset import ColumnSpec

        kwargs["spec"] = ColumnSpec(
            task=kwargs["task"],
            label_col=kwargs.pop("label_col"),
            target_cols=kwargs.pop("target_cols"),
            group_col=kwargs.pop("group_col"),
            subject_col=kwargs.pop("subject_col"),
            channels=[c.strip() for c in kwargs.pop("channels").split(",") if c.strip()],
            nan=kwargs.pop("nan"),
            sequences=kwargs.pop("sequences"),
        )
        return f(*args, **kwargs)

    return wrapper


class PositiveNumber(click.ParamType):
    """A finite number above 0 (click's FloatRange lets NaN through: every comparison with NaN is false)."""

    name = "number"

    def convert(self, value, param, ctx):
        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(v) or v <= 0:
            self.fail(f"{value!r}: must be a finite number above 0", param, ctx)
        return v


POSITIVE = PositiveNumber()


class Epochs(click.ParamType):
    """A whole number of epochs, or "auto" (train.fit.budget_epochs sizes it to the training windows)."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int):
            return value
        if str(value).strip().lower() == "auto":
            return "auto"
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a whole number nor 'auto'", param, ctx)


def fit_options(f):
    """How a model is fitted (train and distill alike: train.fit.FitOptions)."""
    options = [
        click.option(
            "--epochs",
            type=Epochs(),
            default=None,
            help="Most epochs (early stopping may end sooner); auto: enough for about 2000 optimizer steps, "
            "30 to 200 epochs. Default: 30; auto for a classifier over long series (windows stepped in frames).",
        ),
        click.option("--batch-size", default=32, show_default=True),
        click.option("--lr", "learning_rate", default=3e-3, show_default=True, help="Adam learning rate."),
        click.option(
            "--clip",
            type=click.Choice(["norm", "value"]),
            default="norm",
            show_default=True,
            help="Gradient clipping by global norm or by value.",
        ),
        click.option("--clip-at", default=1.0, show_default=True, help="Clipping threshold."),
        click.option(
            "--patience",
            type=int,
            default=None,
            help="Early stopping: epochs without improvement; 0: none, the last epoch is kept. Default: 6; 0 for a "
            "classifier over long series.",
        ),
        click.option(
            "--min-epochs",
            default=0,
            show_default=True,
            help="Early stopping neither stops nor keeps an epoch before this one (a tiny validation split is noisy).",
        ),
        click.option(
            "--augment",
            type=int,
            default=None,
            help="Augmented copies of each training window: per-channel gain and jitter, so unseen subjects "
            "and int8 rounding do not flip decisions. Default: 3 for classification, 0 otherwise.",
        ),
        click.option(
            "--aug-gain",
            default=0.2,
            show_default=True,
            help="Augmentation: channel gain drawn from [1-g, 1+g] (classification only).",
        ),
        click.option("--aug-jitter", default=0.1, show_default=True, help="Augmentation: noise, in channel std units."),
        click.option(
            "--aug-warp",
            default=0.0,
            show_default=True,
            help="Augmentation: time and magnitude warping, smooth random curves of this σ (e.g. 0.2); 0: off.",
        ),
        click.option(
            "--aug-rotate",
            default=0.0,
            show_default=True,
            help="Augmentation: rotate axis triplets (channels named like acc_x/acc_y/acc_z) by up to this many "
            "degrees, as a device worn another way would.",
        ),
        click.option(
            "--axes",
            default="",
            metavar="X,Y,Z[;X,Y,Z]",
            help="Axis triplets --aug-rotate turns, by channel name (default: found from names like acc_x).",
        ),
        click.option(
            "--lr-schedule",
            type=click.Choice(["constant", "cosine", "plateau"]),
            default=None,
            help="Learning rate over epochs: constant, a half cosine to 0, or halved when validation loss stalls. "
            "Default: cosine when train or tune fits a classifier, else constant.",
        ),
        click.option("--warmup", default=0, show_default=True, help="Epochs of linear learning-rate warm-up."),
        click.option(
            "--weight-decay",
            type=float,
            default=None,
            help="> 0: AdamW with this decoupled decay. Default: 1e-4 when train or tune fits a classifier, else 0.",
        ),
        click.option(
            "--label-smoothing",
            type=float,
            default=None,
            help="Classification: label smoothing. Default: 0.1 when train or tune fits a classifier, else 0.",
        ),
        click.option(
            "--class-weight",
            type=click.Choice(["none", "balanced"]),
            default="none",
            show_default=True,
            help="Classification: weigh each class by N / (K n_c), so rare classes count as much as common ones.",
        ),
        click.option(
            "--mixup",
            type=float,
            default=0.0,
            show_default=True,
            help="Classification: blend pairs of training windows and their labels, weight ~ Beta(A, A) (0: off).",
            metavar="A",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def echo_err(msg: str) -> None:
    click.echo(msg, err=True)
