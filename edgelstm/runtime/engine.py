"""The one step engine: feeds any model the runner can open (a .tflite or .onnx through the runtime's
interpreters, or on the host the float TF step model behind the same Interpreter API) — input mapped once by
`quant.InputMap`, state carried (copied, or requantized where a state output's quantization differs from its
input's), output dequantized.

Two kinds: `CopyEngine` for any interpreter (set/get by name), `ViewEngine` for TFLite (straight into the tensors'
buffers, with the hot path generated as straight-line code). `bind` reads the metadata's roles;
`run_windows` steps windows from fresh state — the loop that calibration, conversion checks, evaluate and the
accuracy report all use, so a quantized model is scored by the code the device runs.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..errors import InputError, MetadataError
from .interpreter import Interpreter
from .quant import InputMap, byte_table, clip, dequantize, quantize, quantizer


class Engine:
    """Feeds one interpreter: raw input in (mapped by `InputMap`), state carried, raw output out. Two kinds."""

    sequence = False  # a whole-window model (input role "window"): one invoke per window
    frame = 1  # samples per step: a frame model's x is S consecutive samples, oldest first

    def __init__(self, it: Interpreter, x, x_rev, pairs, y, mean, inv_std, compander=None) -> None:
        self.it, self.x, self.x_rev, self.pairs, self.y = it, x, x_rev, pairs, y
        self.xq, self.yq = quantizer(x), quantizer(y)
        self.xmap = InputMap(mean, inv_std, self.xq, compander)
        self.xrmap = InputMap(mean, inv_std, quantizer(x_rev), compander) if x_rev is not None else None
        self.mean, self.inv_std, self.compander = mean, inv_std, compander

    def set_x(self, raw: np.ndarray) -> None:
        """Raw (un-normalized) samples shaped like the x input."""
        self.it.set(self.x.name, self.xmap(raw))

    def set_x_rev(self, raw: np.ndarray) -> None:
        self.it.set(self.x_rev.name, self.xrmap(raw))

    def state_finite(self) -> bool:
        """Whether every float state tensor holds finite values (integer state always does)."""
        return all(np.isfinite(v).all() for v in self._state_arrays() if v.dtype.kind == "f")


class CopyEngine(Engine):
    """Any interpreter: inputs set and outputs read by name (copies), state in preallocated arrays."""

    def __init__(self, *a) -> None:
        super().__init__(*a)
        self.state = {}
        self._xbuf = np.zeros(self.x.shape, np.float32)

    def reset_state(self) -> None:
        for tin, _tout, qin, _qout in self.pairs:
            self.state[tin.name] = np.full(tin.shape, qin[1] if qin else 0, tin.dtype)
        self.it.reset()

    def _state_arrays(self):
        return self.state.values()

    def invoke_carry(self) -> None:
        it, state = self.it, self.state
        for tin, _tout, _qi, _qo in self.pairs:
            it.set(tin.name, state[tin.name])
        it.invoke()
        for tin, tout, qin, qout in self.pairs:
            v = it.get(tout.name)
            if qin != qout:  # int8 state: the output's scale is not the input's, so requantize
                f = dequantize(v, qout)
                v = quantize(f, qin) if qin else f.astype(tin.dtype)
            state[tin.name] = v

    def raw_y(self) -> np.ndarray:
        return dequantize(self.it.get(self.y.name).reshape(-1), self.yq)

    def make_step(self):
        x, mean, inv_std, pre = self._xbuf, self.mean, self.inv_std, self.compander
        xname, xmap, set_ = self.x.name, self.xmap, self.it.set

        def step(sample) -> np.ndarray:
            if xmap.q:
                set_(xname, xmap(sample).reshape(x.shape))  # the map companding first where the model does
            else:
                np.subtract(sample if pre is None else pre(sample), mean, out=x[0])
                x[0] *= inv_std
                set_(xname, x)
            self.invoke_carry()
            return self.raw_y()

        return step


class ViewEngine(Engine):
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
            self.ytable = dequantize(src, self.yq)
            self.yv = self.yv.view(np.uint8)
        self.copies, self.tables, self.general = [], [], []
        for tin, tout, qin, qout in self.pairs:
            vin, vout = it.view(tin.name), it.view(tout.name, output=True)
            table = byte_table(qout, qin) if qin != qout else None
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

    def _state_arrays(self):
        return [vin for vin, _ in self.copies] + [vin for *_, vin in self.tables] + [g[0] for g in self.general]

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
            f = dequantize(vout, qout)
            vin[...] = quantize(f, qin) if qin else f

    def raw_y(self) -> np.ndarray:
        return self.ytable.take(self.yv) if self.ytable is not None else dequantize(self.yv.copy(), self.yq)

    def make_step(self):
        """The hot path, specialized once per model as straight-line code (every call and Python-level loop here
        costs 2-10 % of a step, so it is generated with one line per operation and no loops or indirection).

        Float model: 2 ufuncs, invoke, one copy per state tensor. int8-I/O model: 4 ufuncs and a cast to quantize
        the sample (`InputMap`), invoke, one copy per state tensor whose output shares its input's quantization
        (docs/metadata.md) and one table lookup per other 8-bit state tensor, one table lookup to dequantize the
        output. Everything works in preallocated buffers or the tensors' own memory. `vin[...] = vout` is numpy's
        fastest copy between two small arrays (less than half of np.copyto's call); take's mode "clip" (never
        triggered: a byte always indexes a 256-entry table) spares numpy the temporary copy that take(out=...)
        makes in its default mode, which doubled its cost.
        """
        ns: dict = {
            "invoke": self.it.invoke,
            "xrow": self.xv.reshape(-1),
            "clip": clip,
            "add": np.add,
            "subtract": np.subtract,
            "multiply": np.multiply,
            "rint": np.rint,
        }
        yv = self.yv
        ns["read_y"] = (
            partial(self.ytable.take, yv) if self.ytable is not None else (yv.copy if self.yq is None else self.raw_y)
        )
        body = []
        if self.compander is not None:  # heavy-tailed channels companded first (runtime/compand.py)
            ns["compand"] = self.compander
            body.append("sample = compand(sample)")
        if self.xq is None:
            ns.update(mean=self.mean, inv_std=self.inv_std)
            body += ["subtract(sample, mean, out=xrow)", "multiply(xrow, inv_std, out=xrow)"]
        else:
            m = self.xmap
            ns.update(a=m.a, b=m.b, lo=m.lo, hi=m.hi, f=self._scratch)
            body += [
                "multiply(sample, a, out=f)",
                "add(f, b, out=f)",
                "clip(f, lo, hi, out=f)",
                "rint(f, out=f)",
                "xrow[...] = f",
            ]  # whole numbers within the dtype's range: the cast is exact
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
        src = (
            f"def make({', '.join(names)}):\n    def step(sample):\n"
            + "".join(f"        {line}\n" for line in body)
            + "    return step\n"
        )
        scope: dict = {}
        exec(compile(src, "<edgelstm runner step>", "exec"), scope)
        return scope["make"](**ns)

    def _carry_general(self) -> None:
        for vin, vout, qin, qout in self.general:
            f = dequantize(vout, qout)
            vin[...] = quantize(f, qin) if qin else f


def bind(
    it: Interpreter,
    inputs: list[dict],
    outputs: list[dict],
    mean: np.ndarray,
    inv_std: np.ndarray,
    where: str = "model",
    compander=None,
) -> Engine:
    """An engine for `it`, its tensors found by the roles the metadata gives them (x, x_reverse or window; y;
    state outputs naming the input they feed). `compander`: the model's heavy-tailed channels, companded before
    mean and std apply (runtime/compand.py)."""
    by_role: dict[str, list[dict]] = {}
    for side, specs, tensors in (("in", inputs, it.inputs), ("out", outputs, it.outputs)):
        for spec in specs:
            if spec["name"] not in tensors:
                raise MetadataError(
                    f"{where}: metadata names {side}put {spec['name']!r}, the model has {', '.join(sorted(tensors))}"
                )
            by_role.setdefault(f"{side}:{spec['role']}", []).append(spec)
    pairs = []
    for o in by_role.get("out:state", []):
        tin, tout = it.inputs[o["state_input"]], it.outputs[o["name"]]
        qin, qout = quantizer(tin), quantizer(tout)
        if o.get("shared_quantization") and qin != qout:
            raise MetadataError(
                f"{where}: metadata says state output {o['name']!r} shares the quantization of "
                f"{o['state_input']!r}, but the model's tensors differ ({qout} vs {qin})"
            )
        pairs.append((tin, tout, qin, qout))
    xs = by_role.get("in:x") or by_role.get("in:window")
    x = it.inputs[xs[0]["name"]]
    x_rev = it.inputs[by_role["in:x_reverse"][0]["name"]] if "in:x_reverse" in by_role else None
    y = it.outputs[by_role["out:y"][0]["name"]]
    sequence = "in:window" in by_role
    F = len(mean)
    frame = 1 if sequence else int(x.shape[-1]) // max(F, 1)
    if not sequence and frame * F != int(x.shape[-1]):
        raise MetadataError(
            f"{where}: input {x.name!r} takes {x.shape[-1]} values, not a whole number of {F}-channel samples"
        )
    # the raw sample that normalizes to 0 (PAD): what fills a frame partly in the padding
    sample_mean = np.asarray(mean, np.float32) if compander is None else compander.invert(mean)
    if frame > 1:  # a frame model: S samples per step, normalized sample by sample
        mean, inv_std = np.tile(mean, frame), np.tile(inv_std, frame)
        compander = compander.tile(frame) if compander is not None else None
    kind = ViewEngine if it.supports_views else CopyEngine
    engine = kind(it, x, x_rev, pairs, y, mean, inv_std, compander)
    engine.sequence, engine.frame, engine.sample_mean = sequence, frame, sample_mean
    return engine


def whole_frames(X: np.ndarray, frame: int, value) -> np.ndarray:
    """Pre-padded sequences [N, T, F] as whole frames of `frame` samples: more NaN padding in front up to a
    multiple of `frame`, then NaN in a frame that also holds real samples becomes `value`; frames wholly in the
    padding stay NaN. The Keras model (data/prepare.py) and the step engine both see this."""
    if not np.isnan(X).any():
        return X
    N, T, F = X.shape
    if T % frame:
        X = np.concatenate([np.full((N, -T % frame, F), np.nan, np.float32), X], axis=1)
        T = X.shape[1]
    fr = X.reshape(N, T // frame, frame, F)
    partial = np.isnan(fr).any(axis=(2, 3)) & ~np.isnan(fr).all(axis=(2, 3))
    if not partial.any():
        return X
    fr = fr.copy()
    fr[partial] = np.where(np.isnan(fr[partial]), value, fr[partial])
    return fr.reshape(N, T, F)


def run_windows(engine: Engine, X: np.ndarray) -> np.ndarray:
    """Windows of samples [N, T, F] (in the units the engine's InputMap expects) → outputs [N, n_outputs], each
    window from fresh state (a fused sequence LSTM's hidden variables reset too). One pass when the interpreter
    takes a batch of N (the TF step model), else window after window."""
    X = np.asarray(X, np.float32)
    if engine.frame > 1 and not engine.sequence:  # frame models step S samples at a time: [N, T/S, S·F]
        X = whole_frames(X, engine.frame, engine.sample_mean)
        N, T, F = X.shape
        if T % engine.frame:
            raise InputError(f"windows of {T} samples are not whole frames of {engine.frame}")
        X = X.reshape(N, T // engine.frame, engine.frame * F)
    if not engine.sequence and not engine.it.masks_padding and len(X) and np.isnan(X).any():
        # variable-length sequences, pre-padded with NaN: each steps from zero state over its own samples only
        real = ~np.isnan(X).any(axis=2)
        return np.stack([_run_batch(engine, X[i : i + 1, real[i]])[0] for i in range(len(X))])
    if engine.x.shape[0] == len(X):
        return _run_batch(engine, X)
    return np.stack([_run_batch(engine, X[i : i + 1])[0] for i in range(len(X))])


def _run_batch(engine: Engine, X: np.ndarray) -> np.ndarray:
    engine.reset_state()
    if engine.sequence:
        engine.set_x(X)
        engine.invoke_carry()
    else:
        T = X.shape[1]
        for t in range(T):
            engine.set_x(X[:, t])
            if engine.x_rev is not None:
                engine.set_x_rev(X[:, T - 1 - t])
            engine.invoke_carry()
    return engine.raw_y().reshape(len(X), -1)
