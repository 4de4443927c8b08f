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
@click.option("--threads", type=click.IntRange(min=1), help="Interpreter threads (default 1, or the target's).")
@click.option("--delegate", type=click.Choice(["edgetpu"]), help="Load a delegate (Coral: libedgetpu).")
@click.option(
    "--target",
    help="Target profile (targets/NAME.toml, or a path to one): runtime, threads and delegate from it, as `run` "
    "takes them; options given here win.",
)
@click.option(
    "--no-default-delegates",
    is_flag=True,
    default=None,
    help="LiteRT without its default XNNPACK delegate (as `run --no-default-delegates`).",
)
@click.option("--count", default=2000, show_default=True, type=click.IntRange(min=1), help="Timed steps (or windows).")
@click.option("--warmup", default=100, show_default=True, type=click.IntRange(min=0), help="Untimed steps first.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def bench(
    model: Path,
    runtime: str,
    threads: int | None,
    delegate: str | None,
    target: str | None,
    no_default_delegates: bool | None,
    count: int,
    warmup: int,
    as_json: bool,
) -> None:
    """Time a model per step as benchmark_model does (init, first, warm-up, avg/std/min/median/p99/max), beside a
    plain set_tensor/invoke/get_tensor loop and invoke() alone on the interpreter's own API, in one run."""
    from ..runtime.bench import bench as run_bench
    from ..runtime.bench import format_report
    from .options import echo_err

    opts = {"runtime": runtime, "threads": threads or 1, "delegate": delegate}
    if target:
        from ..runtime.targetopts import target_options

        opts = target_options(target, model, runtime, threads, delegate, say=echo_err)
    r = run_bench(model, count=count, warmup=warmup, no_default_delegates=no_default_delegates or None, **opts)
    click.echo(json.dumps(r, indent=2) if as_json else format_report(r))
