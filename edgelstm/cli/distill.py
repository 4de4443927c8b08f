"""`edgelstm distill`."""

from __future__ import annotations

from pathlib import Path

import click

from ..models.config import POOLS
from .options import data_options, echo_err, fit_options

# int8 size and step latency, when --no-int8 skipped the measurement
PENDING = "n/a (not measured)"


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@data_options
@click.option(
    "--teacher",
    type=click.Path(path_type=Path),
    required=True,
    help="Model directory of the trained teacher (e.g. a BiLSTM); frozen while the student learns.",
)
@click.option(
    "--student",
    required=True,
    help="ARCH:UNITS[xLAYERS], e.g. gru:16, lstm:32x2 (a bilstm student cannot stream); rocket:SHARES for a rocket "
    "teacher (a smaller rocket model).",
)
@click.option(
    "--conv",
    default=None,
    metavar="K:F[xN]",
    help="The student's causal convolutional front-end, as train's --conv (a CRNN student). Default: none.",
)
@click.option(
    "--pool",
    type=click.Choice(list(POOLS)),
    default="last",
    show_default=True,
    help="What the student's output layer sees, as train's --pool (maxconv needs --conv).",
)
@click.option(
    "--temperature",
    default=4.0,
    show_default=True,
    help="Softens the teacher's logits (classification); the KL term is scaled by T².",
)
@click.option(
    "--alpha",
    default=0.5,
    show_default=True,
    help="Weight of the hard-label loss; 1 - alpha weighs the teacher's soft targets.",
)
@fit_options
@click.option(
    "--int8/--no-int8",
    "measure_int8",
    default=True,
    show_default=True,
    help="Quantize the step models to int8 and report their size and step latency.",
)
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), required=True, help="Model directory to write for the student."
)
@click.option("--overwrite", is_flag=True, help="Replace the model directory -o if there is one.")
def distill(
    data: Path, spec, task: str, teacher: Path, student: str, conv, pool: str, out: Path, overwrite: bool, **opts
) -> None:
    """Distill a trained teacher into a small student, and compare both with the student trained alone.

    DATA is read like `edgelstm train` reads it, with the teacher's task, window, stride and split seed. Writes an
    ordinary model directory plus distill_report.json and distill_report.png, and prints the comparison.
    """
    from ..data.dataset import load
    from ..models.modeldir import load_config
    from ..train.distill import DistillOptions, column_spec_for, parse_student
    from ..train.distill import distill as run_distill

    student_spec = parse_student(student, conv, pool)
    dopts = DistillOptions(**opts)
    dopts.check()
    tcfg = load_config(teacher)
    ctx = click.get_current_context()
    named = {
        k
        for k in ("task", "label_col", "group_col", "subject_col", "nan")
        if ctx.get_parameter_source(k) != click.core.ParameterSource.DEFAULT
    }
    spec = column_spec_for(spec, tcfg, "task" in named, teacher, frozenset(named - {"task"}))
    ds = load(data.absolute(), spec)  # absolute in config.json: the student works from any folder
    report = run_distill(ds, teacher, student_spec, out, dopts, spec.task, echo_err, overwrite)
    click.echo(format_report(report))
    click.echo(f"{out}: student model directory; report: {out / 'distill_report.json'}, {out / 'distill_report.png'}")


def _or_note(m: dict, key: str, fmt: str) -> str:
    return fmt.format(m[key]) if m.get(key) is not None else (m.get("int8_note") or PENDING)


def format_report(report: dict) -> str:
    """The report as a plain-text table: one column per model, one row per figure."""
    models = report["models"]
    heads = {"teacher": "teacher", "student": "student (distilled)", "baseline": "baseline (no teacher)"}
    metric_rows = (
        [("accuracy", "accuracy"), ("macro_f1", "macro-F1")]
        if report["task"] == "classify"
        else [("rmse", "RMSE"), ("mae", "MAE")]
    )
    rows: list[tuple[str, list[str]]] = [
        ("", [heads[m["role"]] for m in models]),
        ("model", [m["model"] for m in models]),
    ]
    for key, name in metric_rows:
        rows.append((f"held-out {name}", [f"{m['test'][key]:.4f}" for m in models]))
    rows += [
        ("parameters", [f"{m['params']:,}" for m in models]),
        ("MACs per step", [f"{m['macs_per_step']:,}" for m in models]),
        ("streams", ["yes" if m["streams"] else "no (needs the whole window)" for m in models]),
        ("epochs run", [str(m["epochs_run"]) if m["epochs_run"] is not None else "-" for m in models]),
        ("int8 size", [_or_note(m, "int8_bytes", "{:,} B") for m in models]),
        ("step latency (int8)", [_or_note(m, "step_latency_us", "{:.1f} µs") for m in models]),
    ]
    w0 = max(len(r[0]) for r in rows)
    widths = [max(len(r[1][i]) for r in rows) for i in range(len(models))]
    lines = ["  ".join([r[0].ljust(w0)] + [c.rjust(w) for c, w in zip(r[1], widths)]) for r in rows]
    rel = report["student_vs_teacher"]
    base = report["baseline_vs_teacher"]
    if report["task"] == "classify":
        lines.append(
            f"student reaches {rel:.1%} of the teacher's accuracy (baseline without teacher: {base:.1%}) "
            f"with {report['param_ratio']:.1f}x fewer parameters"
        )
    else:
        lines.append(
            f"student RMSE is {rel:.2f}x the teacher's (baseline without teacher: {base:.2f}x) "
            f"with {report['param_ratio']:.1f}x fewer parameters"
        )
    if not report["split_matches_teacher"]:
        lines.append("warning: the teacher was trained on another split; its held-out figure may be optimistic")
    return "\n".join(lines)
