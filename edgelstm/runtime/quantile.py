"""A rank-Gaussian map of each input channel before standardization (training and device alike).

Appliance current, power and similar channels carry their class in where a value sits among all values, not in
its linear size: standardized linearly (or even log-companded), the sequences' levels crowd into a few int8 input
steps. Mapping each channel through its training quantiles onto a standard normal spreads them evenly. The map is
a piecewise-linear table per channel (`np.interp`), clamped at the training range's ends, so any finite sample
maps to a bounded value and the device needs nothing beyond numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KNOTS = 64  # quantiles per channel: the table a model stores (64 knots: 1.6 % of the samples apart)


class QuantileMap:
    """Channel j maps through knots `xs[j]` → `ys[j]`; channels with fewer than two knots pass unchanged."""

    def __init__(self, xs: Sequence[Sequence[float]], ys: Sequence[Sequence[float]], frame: int = 1) -> None:
        self.xs = [np.asarray(x, np.float32) for x in xs]
        self.ys = [np.asarray(y, np.float32) for y in ys]
        self.idx = np.asarray([j for j, x in enumerate(self.xs) if len(x) >= 2], dtype=np.intp)
        self.frame = frame  # samples per input row: the last axis holds `frame` samples of len(xs) channels

    @classmethod
    def from_lists(
        cls, xs: Sequence[Sequence[float]] | None, ys: Sequence[Sequence[float]] | None
    ) -> QuantileMap | None:
        """None when no channel is mapped."""
        if not xs or not any(len(x) >= 2 for x in xs):
            return None
        return cls(xs, ys)

    def tile(self, frame: int) -> QuantileMap:
        """The same per-channel map over a frame of `frame` samples, channels repeating (one np.interp call per
        channel on all of the frame's samples, not one per sample: this runs at every streaming step)."""
        return QuantileMap(self.xs, self.ys, self.frame * frame)

    def __call__(self, x) -> np.ndarray:
        """Raw samples [..., frame·F] → mapped samples (a new float32 array; NaN padding stays NaN)."""
        return self._through(x, self.xs, self.ys)

    def invert(self, y) -> np.ndarray:
        """Mapped samples → raw samples (the inverse table; values beyond the ends give the range's ends)."""
        return self._through(y, self.ys, self.xs)

    def _through(self, v, src: list[np.ndarray], dst: list[np.ndarray]) -> np.ndarray:
        out = np.array(v, np.float32)  # a copy: callers' buffers are never changed
        view = out.reshape(*out.shape[:-1], self.frame, len(src)) if self.frame > 1 else out  # shares out's data
        for j in self.idx:  # np.interp keeps NaN as NaN
            view[..., j] = np.interp(view[..., j], src[j], dst[j])
        return out


def fit_knots(column: np.ndarray, knots: int = KNOTS) -> tuple[list[float], list[float]]:
    """(xs, ys) for one channel's real training samples: its quantiles at evenly spaced probabilities, and the
    standard normal's quantiles at those probabilities (the ends clipped at 1e-7, ±5.2 σ). Tied quantiles (a
    channel that sits on a few values) become one knot at their mean probability; ([], []) for a constant or
    empty channel."""
    from statistics import NormalDist

    x = np.asarray(column, np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0 or x.min() == x.max():
        return [], []
    p = np.linspace(0.0, 1.0, knots)
    q = np.quantile(x, p)
    xs, inverse = np.unique(q, return_inverse=True)
    pm = np.bincount(inverse, weights=p) / np.bincount(inverse)
    gauss = NormalDist()
    ys = [gauss.inv_cdf(float(v)) for v in np.clip(pm, 1e-7, 1 - 1e-7)]
    return [float(v) for v in xs], [float(v) for v in ys]


def table_problem(xs, ys, n: int) -> str | None:
    """Why knots `xs` and values `ys` (from a model's files) are not a map of `n` channels, or None. Empty lists
    are no map; a mapped channel needs as many values as knots, finite numbers, the knots strictly increasing and
    the values not decreasing (np.interp's contract, and a monotone map keeps order)."""
    if not isinstance(xs, list) or not isinstance(ys, list):
        return "quantile knots and values must be lists"
    if not xs and not ys:
        return None
    if len(xs) != n or len(ys) != n:
        return f"quantile tables for {len(xs)} / {len(ys)} channels, not {n}"
    for j, (x, y) in enumerate(zip(xs, ys)):
        if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y):
            return f"channel {j}'s quantile knots and values differ in length"
        if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in x + y):
            return f"channel {j}'s quantile table holds a value that is not a finite number"
        if np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0):
            return f"channel {j}'s quantile knots do not increase"
    return None
