"""Option groups shared by several commands."""

from __future__ import annotations

import functools

import click


def data_options(f):
    """How to read DATA: which columns are labels, targets, recordings, channels; what to do with NaN."""

    @click.option("--task", type=click.Choice(["classify", "regress", "forecast"]), default="classify",
                  show_default=True, help="Classify windows, regress a target, or forecast channels ahead.")
    @click.option("--label-col", default="label", show_default=True,
                  help="CSV column holding the class (classify) or the target (regress).")
    @click.option("--target-col", "target_cols", multiple=True,
                  help="Target column(s) for regress; channel(s) to forecast (default: all).")
    @click.option("--group-col", default="recording", show_default=True,
                  help="CSV column naming the recording; splits never cut across one.")
    @click.option("--channels", default="", help="Comma-separated channel columns (default: all numeric others).")
    @click.option("--nan", type=click.Choice(["error", "drop", "interpolate"]), default="error",
                  show_default=True, help="What to do with NaN/inf values in CSV data.")
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        from ..data import ColumnSpec

        kwargs["spec"] = ColumnSpec(
            task=kwargs["task"], label_col=kwargs.pop("label_col"), target_cols=kwargs.pop("target_cols"),
            group_col=kwargs.pop("group_col"),
            channels=[c.strip() for c in kwargs.pop("channels").split(",") if c.strip()],
            nan=kwargs.pop("nan"),
        )
        return f(*args, **kwargs)

    return wrapper


def echo_err(msg: str) -> None:
    click.echo(msg, err=True)
