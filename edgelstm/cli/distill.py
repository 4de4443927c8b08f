"""`edgelstm distill`."""

from __future__ import annotations

from pathlib import Path

import click

from .options import data_options, echo_err


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@data_options
@click.option("--teacher", type=click.Path(path_type=Path), required=True,
              help="Model directory of the trained teacher (e.g. a BiLSTM); frozen while the student learns.")
@click.option("--student", required=True,
              help="ARCH:UNITS[xLAYERS], e.g. gru:16, lstm:32x2 (a bilstm student cannot stream).")
@click.option("--temperature", default=4.0, show_default=True,
              help="Softens the teacher's logits (classification); the KL term is scaled by T².")
@click.option("--alpha", default=0.5, show_default=True,
              help="Weight of the hard-label loss; 1 - alpha weighs the teacher's soft targets.")
@click.option("--epochs", default=30, show_default=True, help="Most epochs (early stopping may end sooner).")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--lr", "learning_rate", default=3e-3, show_default=True, help="Adam learning rate.")
@click.option("--patience", default=6, show_default=True, help="Early stopping: epochs without improvement.")
@click.option("--augment", type=int, default=None,
              help="Augmented copies of each training window (as in `edgelstm train`). Default: 3 for "
                   "classification, 0 otherwise.")
@click.option("--int8/--no-int8", "measure_int8", default=True, show_default=True,
              help="Quantize the step models to int8 and report their size and step latency.")
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Model directory to write for the student.")
def distill(data: Path, spec, task: str, teacher: Path, student: str, out: Path, **opts) -> None:
    """Distill a trained teacher into a small student, and compare both with the student trained alone.

    DATA is read like `edgelstm train` reads it, with the teacher's task, window, stride and split seed. Writes an
    ordinary model directory plus distill_report.json and distill_report.png, and prints the comparison.
    """
    from ..data import load
    from ..distill import DistillOptions, column_spec_for, format_report, parse_student
    from ..distill import distill as run_distill
    from ..modeldir import load_config

    student_spec = parse_student(student)
    dopts = DistillOptions(**opts)
    dopts.check()
    tcfg = load_config(teacher)
    ctx = click.get_current_context()
    named = {k for k in ("task", "label_col", "group_col", "nan")
             if ctx.get_parameter_source(k) != click.core.ParameterSource.DEFAULT}
    spec = column_spec_for(spec, tcfg, "task" in named, teacher, frozenset(named - {"task"}))
    ds = load(data, spec)
    report = run_distill(ds, teacher, student_spec, out, dopts, task=spec.task, progress=echo_err)
    click.echo(format_report(report))
    click.echo(f"{out}: student model directory; report: {out / 'distill_report.json'}, "
               f"{out / 'distill_report.png'}")
