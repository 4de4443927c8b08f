"""The quantization arithmetic, defined once for every path that feeds or reads a model: the runner's hot path,
its window runs (which evaluate and the accuracy report use), state requantization and the benchmarks.

A quantizer is `(scale, zero point, dtype)` for an integer-quantized tensor, or None for a float one.
"""

from __future__ import annotations

import numpy as np


def quantizer(t) -> tuple | None:
    """(scale, zero point, dtype) when a tensor is integer-quantized, else None."""
    if t.dtype.kind in "iu" and t.scale:
        return (t.scale, t.zero_point, t.dtype)
    return None


def quantize(x: np.ndarray, q) -> np.ndarray:
    """Float values → the integer tensor's: x / scale rounded (np.rint) plus the zero point, saturated."""
    scale, zp, dtype = q
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale) + zp, info.min, info.max).astype(dtype)


def dequantize(y: np.ndarray, q) -> np.ndarray:
    """Integer tensor values → float32 (identity for a float tensor)."""
    return (y.astype(np.float32) - q[1]) * np.float32(q[0]) if q else y


def byte_table(q_from, q_to) -> np.ndarray | None:
    """For 8-bit → 8-bit requantization: a 256-entry table indexed by the source byte (its uint8 view)."""
    if not (q_from and q_to and np.dtype(q_from[2]).itemsize == 1 and np.dtype(q_to[2]).itemsize == 1):
        return None
    return quantize(dequantize(np.arange(256, dtype=np.uint8).view(q_from[2]), q_from), q_to)


class InputMap:
    """How raw samples become one input tensor's values, defined once for every path (step, window, copy).

    Float input: `(x - mean) * inv_std`. Integer input: normalization and quantization fused into one affine map,
    `clip(rint(x * a + b), lo, hi)` with `a = inv_std / scale` and `b = zp - mean * a` (float32), so the hot
    path quantizes a sample with 6 numpy calls into preallocated buffers. It can differ from the two-step
    `rint(((x - mean) / std) / scale) + zp` by one step, for about 4 in a million values (rounding ties).
    A model's compander (heavy-tailed channels, runtime/compand.py) applies to the raw samples first.
    """

    def __init__(self, mean: np.ndarray, inv_std: np.ndarray, q, compander=None) -> None:
        self.mean, self.inv_std, self.q, self.compander = mean, inv_std, q, compander
        if q:
            scale, zp, dtype = q
            info = np.iinfo(dtype)
            self.a = (inv_std / np.float32(scale)).astype(np.float32)
            self.b = (np.float32(zp) - mean * self.a).astype(np.float32)
            n = len(self.a)
            self.lo, self.hi = np.full(n, info.min, np.float32), np.full(n, info.max, np.float32)

    def __call__(self, raw) -> np.ndarray:
        """Raw samples [..., F] → the tensor's values (same dtype); elementwise the same arithmetic as `writer`."""
        x = np.asarray(raw, np.float32) if self.compander is None else self.compander(raw)
        if not self.q:
            return ((x - self.mean) * self.inv_std).astype(np.float32)
        # rint and clip commute (the bounds are whole numbers), so this equals the hot path's order
        return np.clip(np.rint(x * self.a + self.b), self.lo, self.hi).astype(self.q[2])


def ufunc_clip():
    """numpy's 3-input clip ufunc (one call instead of maximum + minimum; np.clip adds a Python layer)."""
    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1
    return core.umath.clip


clip = ufunc_clip()
