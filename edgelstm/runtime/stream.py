"""Stateful streaming over an external-state step model, and the windowed runner for BiLSTM / sequence models.

The runner owns the recurrent state (preallocated buffers, requantized between steps when the state output's
int8 scale differs from the state input's), normalizes each sample, and (de)quantizes the model's I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelDirError
from .interpreter import Interpreter, open_interpreter

REQUIRED = ("kind", "task", "normalization", "inputs", "outputs")


class MetadataError(ModelDirError):
    """The model file lacks the edgelstm metadata the runner needs; the message names what is missing."""


def load_metadata(path: Path) -> dict:
    """The model's embedded edgelstm metadata (a named buffer in .tflite, metadata_props in .onnx)."""
    from ..metadata import read_metadata

    return read_metadata(path)


def check_metadata(meta: dict, path: Path) -> None:
    missing = [k for k in REQUIRED if meta.get(k) in (None, [], {})]
    norm = meta.get("normalization") or {}
    missing += [f"normalization.{k}" for k in ("mean", "std") if "normalization" not in missing and not norm.get(k)]
    if meta.get("task") == "classify" and not meta.get("labels"):
        missing.append("labels")
    roles_in = {i.get("role") for i in meta.get("inputs") or []}
    roles_out = {o.get("role") for o in meta.get("outputs") or []}
    if meta.get("inputs") and not roles_in & {"x", "window"}:
        missing.append("an input with role 'x' or 'window'")
    if meta.get("outputs") and "y" not in roles_out:
        missing.append("an output with role 'y'")
    for o in meta.get("outputs") or []:
        if o.get("role") == "state" and not o.get("state_input"):
            missing.append(f"outputs[{o.get('name')}].state_input")
    if missing:
        raise MetadataError(f"{path}: model metadata is missing {', '.join(missing)}")


@dataclass
class ModelInfo:
    """What the model says about itself: enough to feed it and read its answers."""

    path: Path
    backend: str
    kind: str
    arch: str
    task: str
    n_features: int
    n_outputs: int
    labels: list[str]
    channels: list[str]
    targets: list[str]
    window: int | None
    stride: int | None
    sample_rate: float | None
    quantization: str
    meta: dict = field(repr=False)


@dataclass
class Result:
    """One output: `t` is the index of the sample it refers to; windowed runs add the lookahead they needed."""

    t: int
    values: np.ndarray
    label: str | None = None
    lookahead: int = 0
    lookahead_ms: float | None = None


def _quantizer(t) -> tuple | None:
    """(scale, zero point, dtype) when a tensor is integer-quantized, else None."""
    if t.dtype.kind in "iu" and t.scale:
        return (t.scale, t.zero_point, t.dtype)
    return None


def _quantize(x: np.ndarray, q) -> np.ndarray:
    scale, zp, dtype = q
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale) + zp, info.min, info.max).astype(dtype)


class _InputMap:
    """How raw samples become one input tensor's values, defined once for every path (step, window, copy).

    Float input: `(x - mean) * inv_std`. Integer input: normalization and quantization fused into one affine map,
    `clip(rint(x * a + b), lo, hi)` with `a = inv_std / scale` and `b = zp - mean * a` (float32), so the hot
    path quantizes a sample with 6 numpy calls into preallocated buffers. It can differ from the two-step
    `rint(((x - mean) / std) / scale) + zp` by one step, for about 4 in a million values (rounding ties).
    """

    def __init__(self, mean: np.ndarray, inv_std: np.ndarray, q) -> None:
        self.mean, self.inv_std, self.q = mean, inv_std, q
        if q:
            scale, zp, dtype = q
            info = np.iinfo(dtype)
            self.a = (inv_std / np.float32(scale)).astype(np.float32)
            self.b = (np.float32(zp) - mean * self.a).astype(np.float32)
            n = len(self.a)
            self.lo, self.hi = np.full(n, info.min, np.float32), np.full(n, info.max, np.float32)

    def __call__(self, raw) -> np.ndarray:
        """Raw samples [..., F] → the tensor's values (same dtype); elementwise the same arithmetic as `writer`."""
        x = np.asarray(raw, np.float32)
        if not self.q:
            return ((x - self.mean) * self.inv_std).astype(np.float32)
        # rint and clip commute (the bounds are whole numbers), so this equals the hot path's order
        return np.clip(np.rint(x * self.a + self.b), self.lo, self.hi).astype(self.q[2])


class _Engine:
    """Feeds one interpreter: raw input in (mapped by `_InputMap`), state carried, raw output out. Two kinds."""

    def __init__(self, it: Interpreter, x, x_rev, pairs, y, mean, inv_std) -> None:
        self.it, self.x, self.x_rev, self.pairs, self.y = it, x, x_rev, pairs, y
        self.xq, self.yq = _quantizer(x), _quantizer(y)
        self.xmap = _InputMap(mean, inv_std, self.xq)
        self.xrmap = _InputMap(mean, inv_std, _quantizer(x_rev)) if x_rev is not None else None
        self.mean, self.inv_std = mean, inv_std

    def set_x(self, raw: np.ndarray) -> None:
        """Raw (un-normalized) samples shaped like the x input."""
        self.it.set(self.x.name, self.xmap(raw))

    def set_x_rev(self, raw: np.ndarray) -> None:
        self.it.set(self.x_rev.name, self.xrmap(raw))


class _CopyEngine(_Engine):
    """Any interpreter: inputs set and outputs read by name (copies), state in preallocated arrays."""

    def __init__(self, *a) -> None:
        super().__init__(*a)
        self.state = {}
        self._xbuf = np.zeros(self.x.shape, np.float32)

    def reset_state(self) -> None:
        for tin, _tout, qin, _qout in self.pairs:
            self.state[tin.name] = np.full(tin.shape, qin[1] if qin else 0, tin.dtype)
        self.it.reset()

    def invoke_carry(self) -> None:
        it, state = self.it, self.state
        for tin, _tout, _qi, _qo in self.pairs:
            it.set(tin.name, state[tin.name])
        it.invoke()
        for tin, tout, qin, qout in self.pairs:
            v = it.get(tout.name)
            if qin != qout:  # int8 state: the output's scale is not the input's, so requantize
                f = (v.astype(np.float32) - qout[1]) * qout[0] if qout else v
                v = _quantize(f, qin) if qin else f.astype(tin.dtype)
            state[tin.name] = v

    def raw_y(self) -> np.ndarray:
        return _dequantize(self.it.get(self.y.name).reshape(-1), self.yq)

    def make_step(self):
        x, mean, inv_std = self._xbuf, self.mean, self.inv_std
        xname, xmap, set_ = self.x.name, self.xmap, self.it.set

        def step(sample) -> np.ndarray:
            if xmap.q:
                set_(xname, xmap(sample).reshape(x.shape))
            else:
                np.subtract(sample, mean, out=x[0])
                x[0] *= inv_std
                set_(xname, x)
            self.invoke_carry()
            return self.raw_y()

        return step


def _dequantize(y: np.ndarray, q) -> np.ndarray:
    return (y.astype(np.float32) - q[1]) * np.float32(q[0]) if q else y


def _byte_table(q_from, q_to) -> np.ndarray | None:
    """For 8-bit → 8-bit requantization: a 256-entry table indexed by the source byte (its uint8 view)."""
    if not (q_from and q_to and np.dtype(q_from[2]).itemsize == 1 and np.dtype(q_to[2]).itemsize == 1):
        return None
    src = np.arange(256, dtype=np.uint8).view(q_from[2]).astype(np.float32)
    return _quantize((src - q_from[1]) * np.float32(q_from[0]), q_to)


class _ViewEngine(_Engine):
    """TFLite: samples normalized straight into the input tensor's buffer, state copied output→input in place.

    int8 state whose output scale differs from the input's is requantized through a 256-entry table (one
    numpy call per state tensor, written straight into the state input); int8 outputs are dequantized the
    same way.
    """

    def __init__(self, *a) -> None:
        super().__init__(*a)
        it = self.it
        self.xv = it.view(self.x.name)
        self.yv = it.view(self.y.name, output=True).reshape(-1)
        self.ytable = None
        if self.yq and np.dtype(self.yq[2]).itemsize == 1:
            src = np.arange(256, dtype=np.uint8).view(self.yq[2])
            self.ytable = _dequantize(src, self.yq)
            self.yv = self.yv.view(np.uint8)
        self.copies, self.tables, self.general = [], [], []
        for tin, tout, qin, qout in self.pairs:
            vin, vout = it.view(tin.name), it.view(tout.name, output=True)
            table = _byte_table(qout, qin) if qin != qout else None
            if qin == qout:
                self.copies.append((vin, vout))
            elif table is not None:
                self.tables.append((table, vout.view(np.uint8), vin))
            else:
                self.general.append((vin, vout, qin, qout))
        self._scratch = np.zeros(self.x.shape[-1], np.float32)

    def reset_state(self) -> None:
        for tin, _tout, qin, _qout in self.pairs:
            self.it.view(tin.name).fill(qin[1] if qin else 0)
        self.it.reset()

    def set_x(self, raw: np.ndarray) -> None:
        self.xv[...] = self.xmap(raw)

    def invoke_carry(self) -> None:
        self.it.invoke()
        self._carry()

    def _carry(self) -> None:
        for vin, vout in self.copies:
            vin[...] = vout
        for table, src, vin in self.tables:
            table.take(src, None, vin, "clip")
        for vin, vout, qin, qout in self.general:
            f = _dequantize(vout, qout)
            vin[...] = _quantize(f, qin) if qin else f

    def raw_y(self) -> np.ndarray:
        return self.ytable.take(self.yv) if self.ytable is not None else _dequantize(self.yv.copy(), self.yq)

    def make_step(self):
        """The hot path, specialized once per model as straight-line code (every call and Python-level loop here
        costs 2-10 % of a step, so it is generated with one line per operation and no loops or indirection).

        Float model: 2 ufuncs, invoke, one copy per state tensor. int8-I/O model: 4 ufuncs and a cast to quantize
        the sample (`_InputMap`), invoke, one copy per state tensor whose output shares its input's quantization
        (docs/metadata.md) and one table lookup per other 8-bit state tensor, one table lookup to dequantize the
        output. Everything works in preallocated buffers or the tensors' own memory. `vin[...] = vout` is numpy's
        fastest copy between two small arrays (less than half of np.copyto's call); take's mode "clip" (never
        triggered: a byte always indexes a 256-entry table) spares numpy the temporary copy that take(out=...)
        makes in its default mode, which doubled its cost.
        """
        ns: dict = {"invoke": self.it.invoke, "xrow": self.xv.reshape(-1), "clip": _clip, "add": np.add,
                    "subtract": np.subtract, "multiply": np.multiply, "rint": np.rint}
        yv = self.yv
        ns["read_y"] = partial(self.ytable.take, yv) if self.ytable is not None else (
            yv.copy if self.yq is None else self.raw_y)
        body = []
        if self.xq is None:
            ns.update(mean=self.mean, inv_std=self.inv_std)
            body += ["subtract(sample, mean, out=xrow)", "multiply(xrow, inv_std, out=xrow)"]
        else:
            m = self.xmap
            ns.update(a=m.a, b=m.b, lo=m.lo, hi=m.hi, f=self._scratch)
            body += ["multiply(sample, a, out=f)", "add(f, b, out=f)", "clip(f, lo, hi, out=f)", "rint(f, out=f)",
                     "xrow[...] = f"]  # whole numbers within the dtype's range: the cast is exact
        body.append("invoke()")
        for i, (vin, vout) in enumerate(self.copies):
            ns[f"vin{i}"], ns[f"vout{i}"] = vin, vout
            body.append(f"vin{i}[...] = vout{i}")
        for i, (table, src, vin) in enumerate(self.tables):
            ns[f"take{i}"], ns[f"src{i}"], ns[f"tin{i}"] = table.take, src, vin
            body.append(f"take{i}(src{i}, None, tin{i}, 'clip')")
        if self.general:
            ns["carry_general"] = self._carry_general
            body.append("carry_general()")
        body.append("return read_y()")
        # everything the step uses is a closure variable of `make` (the fastest lookup from a nested function)
        names = sorted(ns)
        src = (f"def make({', '.join(names)}):\n    def step(sample):\n"
               + "".join(f"        {line}\n" for line in body) + "    return step\n")
        scope: dict = {}
        exec(compile(src, "<edgelstm runner step>", "exec"), scope)
        return scope["make"](**ns)

    def _carry_general(self) -> None:
        for vin, vout, qin, qout in self.general:
            f = _dequantize(vout, qout)
            vin[...] = _quantize(f, qin) if qin else f


def _ufunc_clip():
    """numpy's 3-input clip ufunc (one call instead of maximum + minimum; np.clip adds a Python layer)."""
    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1
    return core.umath.clip


_clip = _ufunc_clip()


class Runner:
    """`info = runner.open(model)`, then `runner.step(sample)` per sample or `runner.stream(samples)`."""

    def __init__(self, runtime: str | None = None, threads: int | None = None, delegate: str | None = None,
                 no_default_delegates: bool | None = None, every: int = 1, reset_after: float | None = None,
                 window: int | None = None, hop: int | None = None, rate: float | None = None) -> None:
        self._opts = dict(runtime=runtime, threads=threads, delegate=delegate,
                          no_default_delegates=no_default_delegates)
        self.every = max(1, int(every))
        self.reset_after = reset_after
        self._window = window
        self._hop = hop
        self._rate = rate
        self.info: ModelInfo | None = None
        self.interp: Interpreter | None = None

    # ---- opening -------------------------------------------------------------------------------------------
    def open(self, model: str | Path) -> ModelInfo:
        path = Path(model)
        if not path.is_file():
            raise InputError(f"{path}: no such model file")
        meta = load_metadata(path)
        check_metadata(meta, path)
        self.interp = it = open_interpreter(path, **self._opts)
        by_role: dict[str, list[dict]] = {}
        for spec in meta["inputs"]:
            if spec["name"] not in it.inputs:
                raise MetadataError(f"{path}: metadata names input {spec['name']!r}, the model has "
                                    f"{', '.join(sorted(it.inputs))}")
            by_role.setdefault("in:" + spec["role"], []).append(spec)
        for spec in meta["outputs"]:
            if spec["name"] not in it.outputs:
                raise MetadataError(f"{path}: metadata names output {spec['name']!r}, the model has "
                                    f"{', '.join(sorted(it.outputs))}")
            by_role.setdefault("out:" + spec["role"], []).append(spec)
        norm = meta["normalization"]
        self._mean = np.asarray(norm["mean"], dtype=np.float32)
        self._inv_std = (1.0 / np.maximum(np.asarray(norm["std"], dtype=np.float32), 1e-12)).astype(np.float32)
        n_features = len(self._mean)
        tnorm = meta.get("target_normalization") or None
        self._t_mean = np.asarray(tnorm["mean"], dtype=np.float32) if tnorm else None
        self._t_std = np.asarray(tnorm["std"], dtype=np.float32) if tnorm else None

        self._y = it.outputs[by_role["out:y"][0]["name"]]
        self._yq = _quantizer(self._y)
        n_outputs = int(np.prod(self._y.shape[1:])) if len(self._y.shape) > 1 else int(self._y.shape[0])
        kind = meta["kind"]
        self.info = ModelInfo(
            path=path, backend=it.backend, kind=kind, arch=meta.get("arch", "?"), task=meta["task"],
            n_features=n_features, n_outputs=n_outputs, labels=list(meta.get("labels") or []),
            channels=list(meta.get("channels") or []), targets=list(meta.get("targets") or []),
            window=meta.get("window"), stride=meta.get("stride"), sample_rate=meta.get("sample_rate"),
            quantization=meta.get("quantization", "float"), meta=meta,
        )
        self._pairs = []
        for o in by_role.get("out:state", []):
            tin, tout = it.inputs[o["state_input"]], it.outputs[o["name"]]
            qin, qout = _quantizer(tin), _quantizer(tout)
            if o.get("shared_quantization") and qin != qout:
                raise MetadataError(f"{path}: metadata says state output {o['name']!r} shares the quantization of "
                                    f"{o['state_input']!r}, but the model's tensors differ ({qout} vs {qin})")
            self._pairs.append((tin, tout, qin, qout))
        xs = by_role.get("in:x") or by_role.get("in:window")
        self._x = it.inputs[xs[0]["name"]]
        self._xq = _quantizer(self._x)
        self._x_rev = it.inputs[by_role["in:x_reverse"][0]["name"]] if "in:x_reverse" in by_role else None
        engine = _ViewEngine if it.supports_views else _CopyEngine
        self._engine = engine(it, self._x, self._x_rev, self._pairs, self._y, self._mean, self._inv_std)
        raw_step = self._engine.make_step()
        post = self._post
        if post is None:
            self.step = raw_step
        else:
            self.step = lambda sample: post(raw_step(sample))
        self.windowed = kind == "sequence" or self._x_rev is not None or self._window is not None
        if self.windowed:
            self._setup_window(path)
        self.reset()
        return self.info

    @property
    def _post(self):
        """De-normalization of regression/forecast outputs, or None when the output is the answer."""
        t_mean, t_std = self._t_mean, self._t_std
        if t_mean is None:
            return None

        def post(y: np.ndarray) -> np.ndarray:
            return y * t_std + t_mean

        return post

    def _setup_window(self, path: Path) -> None:
        info = self.info
        w = self._window or info.window or (self._x.shape[1] if info.kind == "sequence" else None)
        if not w:
            raise MetadataError(f"{path}: a windowed run needs --window (the metadata has no window)")
        if info.kind == "sequence" and self._x.shape[1] not in (w, -1):
            raise InputError(f"{path}: the sequence model takes windows of {self._x.shape[1]}, not --window {w}")
        self.window = int(w)
        self.hop = int(self._hop or info.stride or 1)
        self.rate = self._rate or info.sample_rate
        self._ring = np.zeros((2 * self.window, info.n_features), np.float32)
        self.centre = self.window // 2
        self.lookahead = self.window - 1 - self.centre

    # ---- state ---------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Fresh state and a fresh sample count."""
        self._engine.reset_state()
        self._n = 0
        self._filled = 0
        self._last_time = None

    def step(self, sample) -> np.ndarray:  # replaced per instance by open(): the specialized hot path
        """One raw sample → the model's output after it (probabilities, or values in the targets' units)."""
        raise RuntimeError("Runner.open(model) first")

    def run_window(self, win: np.ndarray) -> np.ndarray:
        """One window of raw samples [W, F] → the model's output, from fresh state (as in training)."""
        x = np.asarray(win, np.float32)
        eng = self._engine
        eng.reset_state()
        if self.info.kind == "sequence":
            eng.set_x(x[None])
            eng.invoke_carry()
        else:
            n = len(x)
            for t in range(n):
                eng.set_x(x[t:t + 1])
                if self._x_rev is not None:
                    eng.set_x_rev(x[n - 1 - t:n - t])
                eng.invoke_carry()
        y = eng.raw_y()
        post = self._post
        return post(y) if post else y

    def _result(self, t: int, y: np.ndarray, lookahead: int = 0) -> Result:
        label = self.info.labels[int(np.argmax(y))] if self.info.task == "classify" and self.info.labels else None
        ms = None
        if lookahead and getattr(self, "rate", None):
            ms = 1000.0 * lookahead / self.rate
        return Result(t, y, label, lookahead, ms)

    def stream(self, samples: Iterable) -> Iterator[Result]:
        """One result per sample (or every k-th), or per hop for windowed models; resets after silence."""
        if self.windowed:
            yield from self._stream_windows(samples)
            return
        every, reset_after, step = self.every, self.reset_after, self.step
        clock = time.monotonic
        for sample in samples:
            if reset_after is not None:
                now = clock()
                if self._last_time is not None and now - self._last_time > reset_after:
                    self._engine.reset_state()
                self._last_time = now
            y = step(sample)
            t = self._n
            self._n += 1
            if every == 1 or t % every == every - 1:
                yield self._result(t, y)

    def _stream_windows(self, samples: Iterable) -> Iterator[Result]:
        W, ring = self.window, self._ring
        clock = time.monotonic
        for sample in samples:
            if self.reset_after is not None:
                now = clock()
                if self._last_time is not None and now - self._last_time > self.reset_after:
                    self._filled = 0
                self._last_time = now
            # a doubled ring buffer: the last W samples are always the contiguous slice ring[pos+1 : pos+1+W]
            pos = self._n % W
            ring[pos] = sample
            ring[pos + W] = sample
            t = self._n
            self._n += 1
            self._filled += 1
            if self._filled >= W and (self._filled - W) % self.hop == 0:
                y = self.run_window(ring[pos + 1:pos + 1 + W])
                yield self._result(t - W + 1 + self.centre, y, self.lookahead)
