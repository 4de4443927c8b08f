"""`edgelstm bench`."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--runtime",
    type=click.Choice(["auto", "litert", "tflite-runtime", "onnxruntime", "tf"]),
    default="auto",
    show_default=True,
    help="Interpreter to time.",
)
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1), help="Interpreter threads.")
@click.option("--count", default=2000, show_default=True, type=click.IntRange(min=1), help="Timed steps (or windows).")
@click.option("--warmup", default=100, show_default=True, type=click.IntRange(min=0), help="Untimed steps first.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def bench(model: Path, runtime: str, threads: int, count: int, warmup: int, as_json: bool) -> None:
    """Time a model per step: init, first inference, min/median/p99/max, the bare invoke loop, peak RSS."""
    from ..runtime.bench import bench as run_bench
    from ..runtime.bench import format_report

    r = run_bench(model, runtime=runtime, threads=threads, count=count, warmup=warmup)
    click.echo(json.dumps(r, indent=2) if as_json else format_report(r))
