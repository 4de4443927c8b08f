"""benchmark_model-style timing of the runner, and of the bare interpreter loop in the same run.

The bare loop is what a user would write by hand on the same interpreter: set input and state, invoke, read
output and state. The runner adds normalization, quantization and state bookkeeping; their ratio is its overhead.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .quant import quantize
from .stream import Runner


def _stats(ns: np.ndarray) -> dict:
    us = ns / 1000.0
    return {
        "count": int(len(us)),
        "min_us": float(us.min()),
        "median_us": float(np.median(us)),
        "mean_us": float(us.mean()),
        "p99_us": float(np.percentile(us, 99)),
        "max_us": float(us.max()),
        "per_s": float(1e6 / us.mean()),
    }


def _time(fn: Callable[[int], object], count: int) -> np.ndarray:
    clock = time.perf_counter_ns
    out = np.empty(count, np.int64)
    for i in range(count):
        t0 = clock()
        fn(i)
        out[i] = clock() - t0
    return out


def peak_rss_kb() -> int:
    """Peak resident set size of this process in KiB (ru_maxrss is bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss / 1024) if sys.platform == "darwin" else int(rss)


def current_rss_kb() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        return peak_rss_kb()


def bench(
    model: str | Path,
    runtime: str | None = None,
    threads: int = 1,
    count: int = 2000,
    warmup: int = 100,
    no_default_delegates: bool | None = None,
) -> dict:
    """Init, first inference, warm-up, then per-step (or per-window) statistics for runner and bare loop."""
    t0 = time.perf_counter_ns()
    runner = Runner(runtime=runtime, threads=threads, no_default_delegates=no_default_delegates)
    info = runner.open(model)
    init_us = (time.perf_counter_ns() - t0) / 1000.0
    rng = np.random.default_rng(0)
    norm = info.meta["normalization"]
    mean, std = np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32)
    n = max(count, 1) + warmup + 1
    if runner.windowed:
        W = runner.window
        data = (mean + std * rng.normal(size=(8, W, info.n_features))).astype(np.float32)
        step = lambda i: runner.run_window(data[i % 8])  # noqa: E731
        unit = "window"
    else:
        data = (mean + std * rng.normal(size=(n, info.n_features))).astype(np.float32)
        step = lambda i: runner.step(data[i])  # noqa: E731
        unit = "step"
    t0 = time.perf_counter_ns()
    step(0)
    first_us = (time.perf_counter_ns() - t0) / 1000.0
    for i in range(warmup):
        step(i + 1)
    runner_ns = _time(lambda i: step(i + 1 + warmup), count)
    bare_ns = _bare(runner, data, count, warmup)
    result = {
        "model": str(model),
        "backend": info.backend,
        "threads": threads,
        "kind": info.kind,
        "unit": unit,
        "quantization": info.quantization,
        "model_bytes": Path(model).stat().st_size,
        "init_us": init_us,
        "first_us": first_us,
        "warmup": warmup,
        "runner": _stats(runner_ns),
        "bare": _stats(bare_ns) if bare_ns is not None else None,
        "peak_rss_kb": peak_rss_kb(),
    }
    if bare_ns is not None:
        result["overhead_ratio"] = result["runner"]["median_us"] / result["bare"]["median_us"]
    return result


def _bare(runner: Runner, data: np.ndarray, count: int, warmup: int) -> np.ndarray | None:
    """The hand-written loop on the runner's own interpreter: inputs prepared up front, state carried as-is."""
    it, x = runner.interp, runner._x
    if runner._x_rev is not None:
        return None
    norm = runner.info.meta["normalization"]
    xs = (data - np.asarray(norm["mean"], np.float32)) / np.asarray(norm["std"], np.float32)
    if runner.info.kind == "sequence":
        xs = xs[:, None] if xs.ndim == 3 else xs
    else:
        xs = xs[:, None, :]
    xs = quantize(xs, runner._xq) if runner._xq else xs.astype(np.float32)
    pairs = [(tin.name, tout.name) for tin, tout, *_ in runner._pairs]
    state = {i: np.zeros(runner.interp.inputs[i].shape, runner.interp.inputs[i].dtype) for i, _ in pairs}
    y = runner._y.name
    xname = x.name
    set_, get, invoke = it.set, it.get, it.invoke
    m = len(xs)

    def one(i: int) -> None:
        set_(xname, xs[i % m])
        for name_in, _ in pairs:
            set_(name_in, state[name_in])
        invoke()
        get(y)
        for name_in, name_out in pairs:
            state[name_in] = get(name_out)

    for i in range(warmup):
        one(i)
    return _time(one, count)


def format_report(r: dict) -> str:
    """Human-readable, in the spirit of LiteRT's benchmark_model."""
    u = r["unit"]
    lines = [
        f"model: {r['model']} ({r['model_bytes'] / 1024:.1f} KiB, {r['kind']}, {r['quantization']})",
        f"runtime: {r['backend']}, {r['threads']} thread(s)",
        f"Init: {r['init_us']:.0f} us, First inference: {r['first_us']:.1f} us, Warm-up: {r['warmup']} {u}s",
    ]
    for name in ("runner", "bare"):
        s = r.get(name)
        if s:
            label = (
                "Runner.step"
                if name == "runner" and u == "step"
                else ("runner" if name == "runner" else "bare invoke loop")
            )
            lines.append(
                f"{label} per {u}: count={s['count']} min={s['min_us']:.1f} median={s['median_us']:.1f} "
                f"p99={s['p99_us']:.1f} max={s['max_us']:.1f} us, {s['per_s']:.0f} {u}s/s"
            )
    if r.get("overhead_ratio") is not None:
        lines.append(f"runner overhead: {r['overhead_ratio']:.2f}x the bare loop (median)")
    lines.append(f"Peak RSS: {r['peak_rss_kb'] / 1024:.1f} MiB")
    return "\n".join(lines)
