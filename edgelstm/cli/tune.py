"""`edgelstm tune`."""

from __future__ import annotations

from pathlib import Path

import click

from .options import POSITIVE, data_options, echo_err, fit_options
from .train import format_metrics


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@data_options
@click.option("--target", default=None, help="Only what this target runs: its ops, its flash as the size budget.")
@click.option("--max-params", type=click.IntRange(min=1), default=None, help="Most parameters.")
@click.option("--max-kb", type=POSITIVE, default=None, help="Largest int8 step model file (KB).")
@click.option("--max-step-us", type=POSITIVE, default=None, help="Slowest step on this machine's runner (µs).")
@click.option("--trials", type=click.IntRange(min=1), default=8, show_default=True, help="Candidates trained.")
@click.option("--folds", type=click.IntRange(min=2), default=3, show_default=True, help="Folds by subject/recording.")
@click.option("--window", type=int, default=None, help="Samples per window (default: as train).")
@click.option("--stride", type=int, default=None, help="Samples between window starts (default: as train).")
@click.option(
    "--test",
    "test_data",
    type=click.Path(path_type=Path),
    default=None,
    help="A test set the search never sees: the winner's metrics.json scores it.",
)
@fit_options
@click.option("--seed", default=0, show_default=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Model directory of the winner.")
@click.option("--overwrite", is_flag=True, help="Replace an existing model directory at -o.")
def tune(
    data: Path,
    spec,
    out: Path,
    overwrite: bool,
    target,
    max_params,
    max_kb,
    max_step_us,
    trials,
    folds,
    test_data,
    **opts,
):
    """Search architecture, size and recipe under a budget, scored by cross-validated int8 accuracy.

    Writes the winner's model directory with its int8 step model, tune.csv (every trial) and tune.png (score
    against size and step latency, Pareto front marked).
    """
    from ..data.dataset import load
    from ..models.modeldir import check_replaceable
    from ..train.fit import TrainOptions
    from ..train.tune import Budget
    from ..train.tune import tune as run_tune

    check_replaceable(out, overwrite)
    tgt = None
    if target:
        from ..targets.profile import load_target

        tgt = load_target(target)
        if max_kb is None and tgt.flash_bytes:
            max_kb = tgt.flash_bytes / 1024
    ds, test = (load(p.absolute(), spec) if p else None for p in (data, test_data))
    budget = Budget(max_params, max_kb, max_step_us, tgt)
    metrics = run_tune(ds, TrainOptions(**opts), out, trials, folds, budget, echo_err, test, overwrite)
    for line in format_trials(metrics["tune"]):
        click.echo(line)
    click.echo(f"{out}: {format_metrics(metrics, opts['task'])}")


def format_trials(summary: dict) -> list[str]:
    """The trials as an aligned table, best first."""
    rows = summary["trials"]
    key = next(k for k in rows[0] if k.startswith("int8_") and k not in ("int8_kb",) and not k.endswith("_sd"))
    lines = [f"{'trial':<28} {'params':>7} {'KB':>7} {'µs/step':>8} {key:>14}  status"]
    scored = sorted(rows, key=lambda r: (r[key] is None, -(r[key] or 0) if "accuracy" in key else (r[key] or 0)))
    for r in scored:
        val = "" if r[key] is None else f"{r[key]:.3f}" + (f" ± {r[key + '_sd']:.3f}" if r.get(key + "_sd") else "")
        kb = "" if r["int8_kb"] is None else f"{r['int8_kb']:.1f}"
        us = "" if r["step_us"] is None else f"{r['step_us']:.1f}"
        mark = " *" if r["trial"] == summary["best"] else ""
        status = r["status"] + (f": {r['why']}" if r["why"] else "")
        lines.append(f"{r['trial'] + mark:<28} {r['params']:>7} {kb:>7} {us:>8} {val:>14}  {status}")
    return lines
