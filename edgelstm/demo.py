"""The demo: sample data → trained model, each step's output where the user can see it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def run_demo(out: Path, say: Callable[[str], None], epochs: int = 30, stream_samples: int = 500) -> dict[str, Path]:
    from .data import ColumnSpec, load
    from .sampledata import write_activity_csv
    from .train import TrainOptions, train

    out = Path(out)
    data = write_activity_csv(out / "data" / "activity.csv")
    say(f"sample data: {data}")
    model_dir = out / "runs" / "lstm32"
    opts = TrainOptions(arch="lstm", units=32, layers=1, window=100, stride=50, epochs=epochs)
    metrics = train(load(data, ColumnSpec()), opts, model_dir, progress=say)
    t = metrics["test"]
    say(f"model: {model_dir} (held-out accuracy {t['accuracy']:.3f}, macro-F1 {t['macro_f1']:.3f})")
    from .convert.api import convert
    from .quantize import quantize_command

    export = out / "export"
    floats = convert(model_dir, "tflite", "both", export, progress=say)
    say("float: " + ", ".join(f"{p.name} ({p.stat().st_size / 1024:.1f} KB)" for p in floats))
    result = quantize_command(model_dir, mode="int8", kind="step", out=export, progress=say)
    for line in result["lines"]:
        say(line)
    paths = {"data": data, "model": model_dir, "export": export, "report": export / "report.html"}
    if stream_samples:
        stream_demo(export / "step.int8.tflite", data, say, stream_samples)
    return paths


def stream_demo(model: Path, data: Path, say: Callable[[str], None], samples: int) -> None:
    """Stream the sample recording through the int8 step model as a device would, printing the live output."""
    from itertools import islice

    from .runtime import Runner
    from .runtime.sources import Skipper, open_source

    runner = Runner(every=max(1, samples // 10))
    info = runner.open(model)
    say(f"streaming {samples} samples of {data.name} through {model.name} ({info.backend}); "
        f"every {runner.every}th output:")
    src = open_source(f"file:{data}", info.n_features, Skipper(), channels=info.channels)
    for r in runner.stream(islice(src, samples)):
        say(f"  sample {r.t}: {r.label} ({max(r.values):.2f})")
