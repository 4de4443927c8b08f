"""benchmark_model-style timing of the runner, against two baselines written directly on the interpreter's public
API in the same run.

- plain loop: what a user writes by hand — `set_tensor` the input and each state, `invoke()`, `get_tensor` the
  output and each state (onnxruntime: one `InferenceSession.run` with the feed built each step);
- invoke: `invoke()` alone on inputs set once (onnxruntime: `run` on a fixed feed) — the floor no runner beats.

Both run on a second interpreter instance opened with the same options, not through edgelstm's name-keyed wrapper,
so "ours vs plain loop" is the runner's whole cost (normalization, quantization, state bookkeeping, the wrapper).
Every statistic is reported as median and mean ± std; steps/s is given for both, so the line never mixes them.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .interpreter import open_public
from .quant import quantize, quantizer
from .stream import Runner

BASELINES = ("plain", "invoke")
ROUNDS = 5  # chunks the timed loops alternate in


def _stats(ns: np.ndarray) -> dict:
    us = ns / 1000.0
    median, mean = float(np.median(us)), float(us.mean())
    return {
        "count": int(len(us)),
        "min_us": float(us.min()),
        "median_us": median,
        "mean_us": mean,
        "std_us": float(us.std()),
        "p99_us": float(np.percentile(us, 99)),
        "max_us": float(us.max()),
        "per_s_median": 1e6 / median if median > 0 else float("inf"),
        "per_s_mean": 1e6 / mean if mean > 0 else float("inf"),
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
    delegate: str | None = None,
) -> dict:
    """Init, first inference, warm-up, then per-step (per-window, per-frame) statistics of the runner and of the
    two public-API baselines, all in this one run."""
    t0 = time.perf_counter_ns()
    runner = Runner(runtime=runtime, threads=threads, delegate=delegate, no_default_delegates=no_default_delegates)
    info = runner.open(model)
    init_us = (time.perf_counter_ns() - t0) / 1000.0
    rng = np.random.default_rng(0)
    norm = info.meta["normalization"]
    mean, std = np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32)
    n = max(count, 1) + warmup + 1
    frame = runner.frame
    if runner.windowed:
        W = runner.window
        data = (mean + std * rng.normal(size=(8, W, info.n_features))).astype(np.float32)
        step = lambda i: runner.run_window(data[i % 8])  # noqa: E731
        unit = "window"
    elif frame > 1:  # one invoke per `frame` samples: time whole frames, so each unit is one invoke everywhere
        data = (mean + std * rng.normal(size=(n, frame, info.n_features))).astype(np.float32)

        def step(i: int) -> None:
            for row in data[i]:
                runner.step(row)

        unit = "frame"
    else:
        data = (mean + std * rng.normal(size=(n, info.n_features))).astype(np.float32)
        step = lambda i: runner.step(data[i])  # noqa: E731
        unit = "step"
    t0 = time.perf_counter_ns()
    step(0)
    first_us = (time.perf_counter_ns() - t0) / 1000.0
    for i in range(warmup):
        step(i + 1)
    loops, note = _baselines(runner, model, threads, delegate, no_default_delegates, warmup)
    loops = {"runner": lambda i: step(i + 1 + warmup), **(loops or {})}
    times = _interleaved(loops, count)
    base = loops if len(loops) > 1 else None
    result = {
        "model": str(model),
        "backend": info.backend,
        "threads": threads,
        "delegate": delegate,
        "kind": info.kind,
        "unit": unit,
        "quantization": info.quantization,
        "model_bytes": Path(model).stat().st_size,
        "init_us": init_us,
        "first_us": first_us,
        "warmup": warmup,
        "runner": _stats(times["runner"]),
        "plain": _stats(times["plain"]) if base else None,
        "invoke": _stats(times["invoke"]) if base else None,
        "baseline_note": note,
        "peak_rss_kb": peak_rss_kb(),
    }
    if base:
        r, p, v = result["runner"], result["plain"], result["invoke"]
        result["ratios"] = {
            stat: {
                "runner_vs_plain": r[f"{stat}_us"] / p[f"{stat}_us"],
                "runner_vs_invoke": r[f"{stat}_us"] / v[f"{stat}_us"],
                "plain_vs_invoke": p[f"{stat}_us"] / v[f"{stat}_us"],
            }
            for stat in ("median", "mean")
        }
    return result


def _interleaved(loops: dict[str, Callable[[int], object]], count: int) -> dict[str, np.ndarray]:
    """Each loop timed `count` times, in ROUNDS alternating chunks: a busy machine's slow spells fall on every loop
    alike, so ratios measured in one run compare like with like."""
    chunks = [c for c in np.array_split(np.arange(count), min(ROUNDS, count)) if len(c)]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in loops}
    for chunk in chunks:
        for name, fn in loops.items():
            first = int(chunk[0])
            parts[name].append(_time(lambda i, fn=fn, first=first: fn(first + i), len(chunk)))
    return {name: np.concatenate(p) for name, p in parts.items()}


def _baselines(runner: Runner, model, threads, delegate, no_default_delegates, warmup: int):
    """({"plain": loop, "invoke": loop}, None) warmed up, or (None, why not). Inputs are random normalized values
    prepared up front (quantized where the tensor is), the state carried as the interpreter returns it."""
    it = runner.interp
    try:
        pub = open_public(it, model, threads, delegate, no_default_delegates)
    except Exception as ex:  # e.g. a delegate whose device admits one interpreter: say so, keep the runner's line
        return None, f"no second interpreter for the baselines: {str(ex).splitlines()[0]}"
    rng = np.random.default_rng(1)
    state_in = [tin for tin, *_ in runner._pairs]
    state_names = {t.name for t in state_in}
    data_in = [t for t in it.inputs.values() if t.name not in state_names]
    m = 16

    def bank(t) -> np.ndarray:
        v = rng.normal(size=(m, *t.shape)).astype(np.float32)
        q = quantizer(t)
        return quantize(v, q) if q else v.astype(t.dtype)

    banks = [(t.index, bank(t)) for t in data_in]
    pairs = [(tin.index, tout.index) for tin, tout, *_ in runner._pairs]
    zeros = {t.index: np.zeros(t.shape, t.dtype) for t in state_in}
    y = runner._y.index
    if it.backend == "onnxruntime":
        names = list(it.outputs)
        run = pub.run
        k = {o: names.index(o) for _, o in pairs}
        yk = names.index(y)
        state = dict(zeros)

        def plain(i: int) -> None:
            feed = {name: b[i % m] for name, b in banks}
            feed.update(state)
            out = run(names, feed)
            out[yk]
            for a, b in pairs:
                state[a] = out[k[b]]

        fixed = {name: b[0] for name, b in banks} | zeros
        invoke = lambda i: run(names, fixed)  # noqa: E731
    else:
        set_tensor, get_tensor, inv = pub.set_tensor, pub.get_tensor, pub.invoke
        state = dict(zeros)

        def plain(i: int) -> None:
            for index, b in banks:
                set_tensor(index, b[i % m])
            for a, _ in pairs:
                set_tensor(a, state[a])
            inv()
            get_tensor(y)
            for a, b in pairs:
                state[a] = get_tensor(b)

        for index, b in banks:
            set_tensor(index, b[0])
        for a, v in zeros.items():
            set_tensor(a, v)
        invoke = lambda i: inv()  # noqa: E731
    # a windowed step model (BiLSTM directions, --window) invokes once per sample of a window: so do the baselines
    per_unit = runner.window if runner.windowed and runner.info.kind == "step" else 1
    out = {}
    for name, fn in (("plain", plain), ("invoke", invoke)):
        unit = fn if per_unit == 1 else (lambda i, fn=fn: [fn(i * per_unit + j) for j in range(per_unit)])
        for i in range(warmup):
            unit(i)
        out[name] = unit
    return out, None


LABELS = {"runner": "edgelstm Runner", "plain": "plain set/invoke/get loop", "invoke": "invoke() alone"}


def format_report(r: dict) -> str:
    """Human-readable, in the spirit of LiteRT's benchmark_model: Init, First, Warm-up, then count / avg / std /
    min / median / p99 / max per timed loop, and the ratios measured in this run."""
    u = r["unit"]
    delegate = f", delegate {r['delegate']}" if r.get("delegate") else ""
    lines = [
        f"model: {r['model']} ({r['model_bytes'] / 1024:.1f} KiB, {r['kind']}, {r['quantization']})",
        f"runtime: {r['backend']}, {r['threads']} thread(s){delegate}",
        f"Init: {r['init_us']:.0f} us, First inference: {r['first_us']:.1f} us, Warm-up: {r['warmup']} {u}s",
    ]
    width = max(len(v) for v in LABELS.values())
    for name in ("runner", *BASELINES):
        s = r.get(name)
        if s:
            lines.append(
                f"{LABELS[name]:<{width}} per {u}: count={s['count']} avg={s['mean_us']:.1f} std={s['std_us']:.1f} "
                f"min={s['min_us']:.1f} median={s['median_us']:.1f} p99={s['p99_us']:.1f} max={s['max_us']:.1f} us; "
                f"{s['per_s_median']:.0f} {u}s/s at the median, {s['per_s_mean']:.0f} at the avg"
            )
    if r.get("ratios"):
        for stat, label in (("median", "median"), ("mean", "avg")):
            q = r["ratios"][stat]
            lines.append(
                f"ratios ({label}): runner {q['runner_vs_plain']:.2f}x the plain loop, {q['runner_vs_invoke']:.2f}x "
                f"invoke() alone; plain loop {q['plain_vs_invoke']:.2f}x invoke()"
            )
    elif r.get("baseline_note"):
        lines.append(f"baselines: {r['baseline_note']}")
    lines.append(f"Peak RSS: {r['peak_rss_kb'] / 1024:.1f} MiB")
    return "\n".join(lines)
