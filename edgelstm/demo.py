"""The demo: sample data → trained model, each step's output where the user can see it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

# The distillation demo: an offline BiLSTM teacher (cannot stream) into a causal GRU student with 1/8 of its
# parameters; tests/test_distill.py asserts this pair keeps >= 97 % of the teacher's held-out accuracy.
DEMO_TEACHER = {"arch": "bilstm", "units": 32, "layers": 2}
DEMO_STUDENT = "gru:32"


def run_demo(
    out: Path, say: Callable[[str], None], epochs: int = 30, stream_samples: int = 500, distill: bool = False
) -> dict[str, Path]:
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
    metrics = train(ds, opts, model_dir, progress=say)
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
    if stream_samples:
        stream_demo(export / "step.int8.tflite", data, say, stream_samples)
    if distill:
        paths.update(run_distill_demo(ds, out / "runs", say, epochs))
        student_export = out / "export_student"
        quantize_with_report(paths["student"], mode="int8", kind="step", out=student_export, progress=say)
        paths["student_int8"] = student_export / "step.int8.tflite"
        if stream_samples:
            stream_demo(paths["student_int8"], data, say, stream_samples)
    return paths


def stream_demo(model: Path, data: Path, say: Callable[[str], None], samples: int) -> None:
    """Stream the sample recording through the int8 step model as a device would, printing the live output."""
    from itertools import islice

    from .runtime import Runner
    from .runtime.sources import Skipper, open_source

    runner = Runner(every=max(1, samples // 10))
    info = runner.open(model)
    say(
        f"streaming {samples} samples of {data.name} through {model.name} ({info.backend}); "
        f"every {runner.every}th output:"
    )
    src = open_source(f"file:{data}", info.n_features, Skipper(), channels=info.channels)
    for r in runner.stream(islice(src, samples)):
        say(f"  sample {r.t}: {r.label} ({max(r.values):.2f})")


def run_distill_demo(ds, runs: Path, say: Callable[[str], None], epochs: int) -> dict[str, Path]:
    """BiLSTM teacher → GRU student; run_demo then quantizes the student to int8 and streams it."""
    from .cli.distill import format_report
    from .train.distill import DistillOptions, parse_student
    from .train.distill import distill as run_distill
    from .train.fit import TrainOptions, train

    teacher_dir = runs / "bilstm_teacher"
    say(f"distill: training the BiLSTM teacher {teacher_dir}")
    train(ds, TrainOptions(**DEMO_TEACHER, window=100, stride=50, epochs=epochs), teacher_dir, progress=say)
    student_dir = runs / "gru_student"
    report = run_distill(
        ds, teacher_dir, parse_student(DEMO_STUDENT), student_dir, DistillOptions(epochs=epochs), progress=say
    )
    say(format_report(report))
    return {"teacher": teacher_dir, "student": student_dir, "distill_report": student_dir / "distill_report.json"}
