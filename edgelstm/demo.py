"""The demo: sample data → trained model, each step's output where the user can see it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

# The distillation demo: an offline BiLSTM teacher (cannot stream) into a causal GRU student with 1/8 of its
# parameters; tests/test_distill.py asserts this pair keeps >= 97 % of the teacher's held-out accuracy.
DEMO_TEACHER = {"arch": "bilstm", "units": 32, "layers": 2}
DEMO_STUDENT = "gru:32"


def run_demo(
    out: Path,
    say: Callable[[str], None],
    epochs: int = 30,
    stream_samples: int | None = 0,
    distill: bool = False,
) -> dict[str, Path]:
    """The demo; `stream_samples`: how much of a held-out recording to stream (0: all of it, None: none)."""
    from .data.dataset import ColumnSpec, load
    from .data.sample import write_activity_csv
    from .train.fit import TrainOptions, train

    out = Path(out)
    from .models.modeldir import check_output_dir

    check_output_dir(out)  # before any work: a file there, or under a file, fails now, not after training
    data = write_activity_csv(out / "data" / "activity.csv")
    say(f"sample data: {data}")
    ds = load(data, ColumnSpec())
    model_dir = out / "runs" / "lstm32"
    opts = TrainOptions(arch="lstm", units=32, layers=1, window=100, stride=50, epochs=epochs)
    metrics = train(ds, opts, model_dir, progress=say, overwrite=True)  # the demo's own folder: a rerun replaces it
    t = metrics["test"]
    say(f"model: {model_dir} (held-out accuracy {t['accuracy']:.3f}, macro-F1 {t['macro_f1']:.3f})")
    from .cli.quantize import result_lines
    from .export.convert import convert
    from .export.quantize import quantize_with_report

    export = out / "export"
    floats = convert(model_dir, "tflite", "both", export, progress=say)
    say("float: " + ", ".join(f"{p.name} ({p.stat().st_size / 1024:.1f} KB)" for p in floats))
    result = quantize_with_report(model_dir, mode="int8", kind="step", out=export, progress=say)
    for line in result_lines(result):
        say(line)
    paths = {"data": data, "model": model_dir, "export": export, "report": export / "report.html"}
    held_out = (metrics.get("split", {}).get("test", {}).get("recordings") or [None])[0]
    if stream_samples is not None:
        stream_demo(export / "step.int8.tflite", data, say, stream_samples, held_out, held_out is not None)
    if distill:
        paths.update(run_distill_demo(ds, out / "runs", say, epochs))
        student_export = out / "export_student"
        quantize_with_report(paths["student"], mode="int8", kind="step", out=student_export, progress=say)
        paths["student_int8"] = student_export / "step.int8.tflite"
        if stream_samples is not None:
            stream_demo(paths["student_int8"], data, say, stream_samples, held_out, held_out is not None)
    return paths


def stream_demo(
    model: Path,
    data: Path,
    say: Callable[[str], None],
    samples: int = 0,
    recording: str | None = None,
    held_out: bool = False,
) -> dict:
    """Stream one recording (a held-out subject's, when named) through a step model as a device would, one output
    per sample, across its activity changes; print each true change and each change of the output label with its
    latency after the true change. Returns the figures it printed."""
    import numpy as np

    from .data.dataset import ColumnSpec, load
    from .evaluate.metrics import change_latencies
    from .runtime import Runner

    ds = load(data, ColumnSpec())
    rec = next((r for r in ds.recordings if r.name == recording), ds.recordings[0])
    x = rec.x[:samples] if samples else rec.x
    truth = np.array([ds.labels[i] for i in rec.y[: len(x)]])
    runner = Runner()
    info = runner.open(model)
    rate = info.sample_rate or ds.sample_rate or 1.0
    pred = np.empty(len(x), dtype=object)
    conf = np.zeros(len(x))
    last = (None, 0.0)
    for r in runner.stream(iter(x)):  # a frame model answers once per frame: the answer holds until the next
        pred[r.t] = r.label
        conf[r.t] = max(r.values)
    for t in range(len(x)):
        if pred[t] is None:
            pred[t], conf[t] = last
        last = (pred[t], conf[t])
    pred = pred.astype(str)
    held = " (held out: a subject training never saw)" if held_out else ""
    say(
        f"streaming {rec.name}{held}, {len(x)} samples ({len(x) / rate:.1f} s), through {model.name} "
        f"({info.backend}), one output per sample; the moments the label changes:"
    )
    latencies = dict(change_latencies(truth, pred))
    since = 0  # the last true change at or before t
    for t in range(len(x)):
        if t and truth[t] != truth[t - 1]:
            since = t
            already = f" (the output already says {pred[t]})" if pred[t] == truth[t] == pred[t - 1] else ""
            say(f"  {t / rate:6.2f} s  true    {truth[t - 1]} → {truth[t]}{already}")
        if t == 0 or pred[t] != pred[t - 1]:
            if pred[t] != truth[t]:
                note = f"wrong (true: {truth[t]})"
            elif since in latencies and latencies[since] == t - since and since:
                note = f"+{t - since} samples ({1000 * (t - since) / rate:.0f} ms) after the true change"
            else:
                note = "right"
            say(f"  {t / rate:6.2f} s  output  {pred[t]} ({conf[t]:.2f})  {note}")
    found = [v for v in latencies.values() if v is not None]
    summary = {
        "changes": len(latencies),
        "recognized": len(found),
        "median_latency_samples": float(np.median(found)) if found else None,
        "output_changes": int((pred[1:] != pred[:-1]).sum()),
        "agreement": float((pred == truth).mean()),
    }
    med = summary["median_latency_samples"]
    say(
        f"  {summary['recognized']} of {summary['changes']} activity changes recognized"
        + (f", median latency {med:.0f} samples ({1000 * med / rate:.0f} ms)" if med is not None else "")
        + f"; the output changed {summary['output_changes']} times; per-sample agreement with the true label "
        f"{summary['agreement']:.1%}"
    )
    return summary


def run_distill_demo(ds, runs: Path, say: Callable[[str], None], epochs: int) -> dict[str, Path]:
    """BiLSTM teacher → GRU student; run_demo then quantizes the student to int8 and streams it."""
    from .cli.distill import format_report
    from .train.distill import DistillOptions, parse_student
    from .train.distill import distill as run_distill
    from .train.fit import TrainOptions, train

    teacher_dir = runs / "bilstm_teacher"
    say(f"distill: training the BiLSTM teacher {teacher_dir}")
    teacher_opts = TrainOptions(**DEMO_TEACHER, window=100, stride=50, epochs=epochs)
    train(ds, teacher_opts, teacher_dir, progress=say, overwrite=True)
    student_dir = runs / "gru_student"
    report = run_distill(
        ds,
        teacher_dir,
        parse_student(DEMO_STUDENT),
        student_dir,
        DistillOptions(epochs=epochs),
        progress=say,
        overwrite=True,
    )
    say(format_report(report))
    return {"teacher": teacher_dir, "student": student_dir, "distill_report": student_dir / "distill_report.json"}
