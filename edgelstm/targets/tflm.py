"""TFLite Micro on the host (the `tflite-micro` package's Python interpreter): the arena a .tflite needs, measured
by running it, and its outputs against LiteRT's through the one step engine (runtime/engine.py). Host side.

TFLM's interpreter knows inputs and outputs by position only; the positions are the subgraph's, which LiteRT lists
in the same order with their signature names, so the engine binds to TFLM by name like to any interpreter.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, MissingExtraError
from ..runtime.interpreter import Interpreter, Tensor

ARENA_STEP = 16  # arena sizes are searched in steps of this (TFLM aligns its allocations to 16)


def _runtime():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise MissingExtraError("tflite-micro", "micro") from None
    return runtime


def litert_io(blob: bytes) -> tuple[list[Tensor], list[Tensor]]:
    """Inputs and outputs in subgraph order, named by the serving signature."""
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    it = LiteRT(model_content=blob)
    sig = it.get_signature_runner()
    name_of = {d["index"]: n for n, d in sig.get_input_details().items()}
    name_of.update({d["index"]: n for n, d in sig.get_output_details().items()})

    def tensors(details) -> list[Tensor]:
        out = []
        for d in details:
            scale, zp = d.get("quantization", (0.0, 0))
            shape = tuple(int(s) for s in d["shape"])
            out.append(Tensor(name_of[d["index"]], d["index"], shape, np.dtype(d["dtype"]), float(scale), int(zp)))
        return out

    return tensors(it.get_input_details()), tensors(it.get_output_details())


class TFLMInterpreter(Interpreter):
    """TFLite Micro behind the runtime's Interpreter API (set / invoke / get by name)."""

    backend = "tflite-micro"

    def __init__(self, blob: bytes, arena_size: int | None = None) -> None:
        ins, outs = litert_io(blob)
        self.inputs = {t.name: t for t in ins}
        self.outputs = {t.name: t for t in outs}
        self._in_pos = {t.name: i for i, t in enumerate(ins)}
        self._out_pos = {t.name: i for i, t in enumerate(outs)}
        try:
            self._it = _runtime().Interpreter.from_bytes(blob, arena_size=arena_size)
        except (RuntimeError, ValueError) as ex:
            raise InputError(f"TFLite Micro cannot load this model: {str(ex).strip().splitlines()[0]}") from None

    def set(self, name: str, value: np.ndarray) -> None:
        t = self.inputs[name]
        self._it.set_input(np.ascontiguousarray(value, t.dtype).reshape(t.shape), self._in_pos[name])

    def invoke(self) -> None:
        self._it.invoke()

    def get(self, name: str) -> np.ndarray:
        return self._it.get_output(self._out_pos[name])


def _captured_output(fn) -> str:
    """What a C++ call prints on file descriptors 1 and 2 (TFLM's allocation report goes to stderr)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile() as tmp:
        for fd in saved:
            os.dup2(tmp.fileno(), fd)
        try:
            fn()
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
        tmp.seek(0)
        return tmp.read().decode(errors="replace")


def _runs_in(blob: bytes, arena: int) -> bool:
    """Does the model load and invoke in an arena of `arena` bytes? (TFLM's complaints are swallowed.)"""
    ok = []

    def attempt() -> None:
        try:
            it = TFLMInterpreter(blob, arena_size=arena)
            for name, t in it.inputs.items():
                it.set(name, np.zeros(t.shape, t.dtype))
            it.invoke()
            ok.append(True)
        except (InputError, RuntimeError, ValueError):
            pass

    _captured_output(attempt)
    return bool(ok)


def arena_bytes(blob: bytes) -> int:
    """The smallest tensor arena (a multiple of ARENA_STEP bytes) in which TFLM loads and invokes the model,
    found by bisection from the recording allocator's total. Measured on the x86-64 host: TFLM's structs hold
    64-bit pointers there, so a 32-bit MCU needs no more."""
    it = TFLMInterpreter(blob)
    for name, t in it.inputs.items():
        it.set(name, np.zeros(t.shape, t.dtype))
    it.invoke()
    report = _captured_output(it._it.print_allocations)
    m = re.search(r"Arena allocation total (\d+) bytes", report)
    if not m:
        raise InputError("TFLite Micro printed no arena total (its allocation report changed)")
    lo, hi = int(m.group(1)) // ARENA_STEP, -(-2 * int(m.group(1)) // ARENA_STEP) + 64
    if not _runs_in(blob, hi * ARENA_STEP):
        raise InputError(f"TFLite Micro cannot run this model even in {hi * ARENA_STEP} B of arena")
    while lo + 1 < hi:  # invariant: hi runs; lo does not (or is the recorded total's floor)
        mid = (lo + hi) // 2
        if _runs_in(blob, mid * ARENA_STEP):
            hi = mid
        else:
            lo = mid
    return hi * ARENA_STEP


# TFLM's reference kernels against LiteRT's optimized ones. Float: summation order only. int8: the int8 LOGISTIC/TANH
# and requantizations differ by up to 2 output steps (1/256) already on one step of a GRU 8 and drift to 5 steps
# (0.0195) over a 20-step window, argmax agreement 100 % (measured): the bar is 0.05 and 99 % agreement.
MAX_ABS_DIFF = {"float": 1e-5, "quantized": 0.05}
MIN_AGREEMENT = 0.99


@dataclass
class TFLMCheck:
    arena: int
    max_abs_diff: float
    argmax_agreement: float | None
    n_windows: int
    steps: int
    quantization: str = "float"

    @property
    def line(self) -> str:
        agree = f", argmax agreement {100 * self.argmax_agreement:.2f} %" if self.argmax_agreement is not None else ""
        return (
            f"TFLite Micro: arena {self.arena} B (measured); {self.n_windows} windows of {self.steps} steps, "
            f"max |TFLM - LiteRT| {self.max_abs_diff:.3g}{agree}"
        )

    def violations(self, name: str) -> list[str]:
        bar = MAX_ABS_DIFF["float" if self.quantization == "float" else "quantized"]
        out = []
        if not self.max_abs_diff <= bar:
            out.append(f"{name}: TFLite Micro's outputs differ from LiteRT's by {self.max_abs_diff:.3g} (> {bar:g})")
        if self.argmax_agreement is not None and self.argmax_agreement < MIN_AGREEMENT:
            out.append(f"{name}: TFLite Micro agrees with LiteRT on {100 * self.argmax_agreement:.2f} % of argmaxes")
        return out


def compare_with_litert(path: Path, n_windows: int = 20, seed: int = 0) -> TFLMCheck:
    """Windows of normalized random samples through TFLM and LiteRT, by the one step engine; outputs compared."""
    from ..modelfile.read import read_metadata
    from ..runtime.engine import bind, run_windows
    from ..runtime.interpreter import open_interpreter

    path = Path(path)
    blob = path.read_bytes()
    meta = read_metadata(path)
    if meta.get("kind") != "step":
        raise InputError(f"{path}: TFLite Micro runs the step model here (this is a {meta.get('kind')} model)")
    F = len(meta["normalization"]["mean"])
    zeros, ones = np.zeros(F, np.float32), np.ones(F, np.float32)
    T = int(meta.get("window") or 50)
    X = np.random.default_rng(seed).normal(0, 1, (n_windows, T, F)).astype(np.float32)
    need = arena_bytes(blob)
    micro = bind(TFLMInterpreter(blob, arena_size=need), meta["inputs"], meta["outputs"], zeros, ones, str(path))
    lite = bind(open_interpreter(path, runtime="litert"), meta["inputs"], meta["outputs"], zeros, ones, str(path))
    a, b = run_windows(micro, X), run_windows(lite, X)
    agree = float((a.argmax(1) == b.argmax(1)).mean()) if meta.get("task") == "classify" else None
    quant = meta.get("quantization", "float")
    return TFLMCheck(need, float(np.abs(a.astype(np.float64) - b).max()), agree, n_windows, T, quant)
