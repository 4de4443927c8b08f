"""Signed-log companding of heavy-tailed channels before standardization (training and device alike).

A current or power channel spends most of its time near its median and spikes two or three orders above it.
Standardized linearly, those small values all land within one int8 input step, and a recurrent cell reads
them as the same number; `sign(d)·log1p(|d|/s)`, `d = x − center`, keeps them apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Compander:
    """Channels `idx` companded around `center` with scale `scale`; every other channel passes unchanged."""

    def __init__(self, center: Sequence[float], scale: Sequence[float]) -> None:
        self.center = np.asarray(center, np.float32)
        self.scale = np.asarray(scale, np.float32)
        self.idx = np.flatnonzero(self.scale > 0)
        self._c = self.center[self.idx]
        self._inv = (1.0 / self.scale[self.idx]).astype(np.float32)
        # |d| capped at 1e30 scales (log1p 69): a finite glitch like 3e38 would overflow |d|/s to inf in float32
        with np.errstate(over="ignore"):
            self._dmax = (np.float32(1e30) * self.scale[self.idx]).astype(np.float32)

    @classmethod
    def from_lists(cls, center: Sequence[float] | None, scale: Sequence[float] | None) -> Compander | None:
        """None when no channel is companded (the model predates companding, or none needed it)."""
        if not scale or not any(s > 0 for s in scale):
            return None
        return cls(center or [0.0] * len(scale), scale)

    def tile(self, frame: int) -> Compander:
        """The same per-channel map over a frame of `frame` samples, channels repeating."""
        return Compander(np.tile(self.center, frame), np.tile(self.scale, frame))

    def __call__(self, x) -> np.ndarray:
        """Raw samples [..., F] → companded samples (a new float32 array; NaN padding stays NaN)."""
        out = np.array(x, np.float32)  # a copy: callers' buffers are never changed
        d = out[..., self.idx] - self._c
        out[..., self.idx] = np.sign(d) * np.log1p(np.minimum(np.abs(d), self._dmax) * self._inv)
        return out

    def invert(self, y) -> np.ndarray:
        """Companded samples → raw samples (the inverse map)."""
        out = np.array(y, np.float32)
        v = out[..., self.idx]
        out[..., self.idx] = self._c + np.sign(v) * np.expm1(np.abs(v)) / self._inv
        return out


def heavy_tailed_scale(column: np.ndarray) -> tuple[float, float]:
    """(center, scale) for one channel's real training samples; scale 0 when linear standardization is fine.

    The rule is int8's: a channel is companded when its median absolute deviation is below one int8 step of its
    range ((max − min) / 255), so that linearly half its samples would share one or two input levels. The scale is
    that deviation (or, when over half the samples sit exactly on the median, the median of the others'), and at
    least a millionth of the span.
    """
    x = np.asarray(column, np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 0.0, 0.0
    med = float(np.median(x))
    dev = np.abs(x - med)
    mad = float(np.median(dev))
    span = float(x.max() - x.min())
    if span <= 0 or mad * 255.0 >= span:
        return med, 0.0
    scale = mad if mad > 0 else float(np.median(dev[dev > 0]))
    # at most 120 dB of range below the span: a near-zero scale would overflow |d|/s in float32
    return med, max(scale, span * 1e-6)
