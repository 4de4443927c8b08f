"""Per-channel standardization (after a per-channel input map: companding heavy-tailed channels, or the
rank-Gaussian quantile map), fitted on the training split and stored with the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..runtime.compand import Compander, heavy_tailed_scale
from ..runtime.quantile import QuantileMap, fit_knots

# how a classifier's raw channels are mapped before standardization, each with why
INPUT_MAPS = {
    "auto": "channels heavy-tailed by int8's rule (runtime/compand.py) through the quantile map, the others linear",
    "linear": "standardization only",
    "compand": "signed-log companding of channels heavy-tailed by int8's rule (runtime/compand.py)",
    "quantile": "every channel through its training quantiles onto a standard normal (runtime/quantile.py)",
}

# ------------------------------------------------------------------------------------------- normalization


@dataclass
class Normalization:
    """Per-channel standardization, stored with the model so the device normalizes exactly as in training."""

    mean: np.ndarray
    std: np.ndarray
    compander: Compander | QuantileMap | None = None  # the input map, applied before mean and std

    @classmethod
    def fit(cls, X: np.ndarray, input_map: str = "linear") -> Normalization:
        """input_map (INPUT_MAPS) applies to classifiers' inputs only: a regression's or forecast's targets stay
        in the data's units."""
        flat = X.reshape(-1, X.shape[-1]).astype(np.float64)
        if np.isnan(flat).any():  # variable-length sequences are pre-padded with NaN: statistics of real samples
            flat = flat[~np.isnan(flat).any(axis=1)]
        compander: Compander | QuantileMap | None = None
        if input_map == "compand" and len(flat):
            center, scale = zip(*(heavy_tailed_scale(flat[:, j]) for j in range(flat.shape[1])))
            compander = Compander.from_lists(list(center), list(scale))
        elif input_map in ("quantile", "auto") and len(flat):
            cols = [flat[:, j] for j in range(flat.shape[1])]
            if input_map == "auto":
                cols = [c if heavy_tailed_scale(c)[1] > 0 else c[:0] for c in cols]
            xs, ys = zip(*(fit_knots(c) for c in cols))
            compander = QuantileMap.from_lists(list(xs), list(ys))
        if compander is not None:
            flat = compander(flat).astype(np.float64)
        mean = flat.mean(axis=0)
        std = flat.std(axis=0)
        std[std < 1e-8] = 1.0  # a constant channel stays as it is, centred
        return cls(mean.astype(np.float32), std.astype(np.float32), compander)

    def apply(self, X: np.ndarray) -> np.ndarray:
        if self.compander is not None:
            X = self.compander(X)
        return ((X - self.mean) / self.std).astype(np.float32)

    def invert(self, X: np.ndarray) -> np.ndarray:
        """Targets only, which are never companded."""
        return (X * self.std + self.mean).astype(np.float32)

    def to_lists(self) -> tuple[list[float], list[float]]:
        return [float(v) for v in self.mean], [float(v) for v in self.std]

    def compand_lists(self) -> tuple[list[float], list[float]]:
        """(center, scale) per channel, scale 0 where linear; ([], []) when no channel is companded."""
        c = self.compander
        ok = isinstance(c, Compander)
        return ([float(v) for v in c.center], [float(v) for v in c.scale]) if ok else ([], [])

    def quantile_lists(self) -> tuple[list[list[float]], list[list[float]]]:
        """(knots, values) per channel, empty where unmapped; ([], []) when there is no quantile map."""
        c = self.compander
        if not isinstance(c, QuantileMap):
            return [], []
        return [[float(v) for v in x] for x in c.xs], [[float(v) for v in y] for y in c.ys]

    @classmethod
    def from_lists(
        cls,
        mean: Sequence[float],
        std: Sequence[float],
        center: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        knots: Sequence[Sequence[float]] | None = None,
        values: Sequence[Sequence[float]] | None = None,
    ) -> Normalization:
        compander = Compander.from_lists(center, scale) or QuantileMap.from_lists(knots, values)
        return cls(np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32), compander)
