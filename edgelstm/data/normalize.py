"""Per-channel standardization (after companding heavy-tailed channels), fitted on the training split and stored
with the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..runtime.compand import Compander, heavy_tailed_scale

# ------------------------------------------------------------------------------------------- normalization


@dataclass
class Normalization:
    """Per-channel standardization, stored with the model so the device normalizes exactly as in training."""

    mean: np.ndarray
    std: np.ndarray
    compander: Compander | None = None  # heavy-tailed channels, companded before mean and std apply

    @classmethod
    def fit(cls, X: np.ndarray, compand: bool = False) -> Normalization:
        """compand=True: channels heavy-tailed by runtime/compand.py's int8 rule are companded first (inputs of
        classifiers only: a regression's or forecast's targets stay in the data's units)."""
        flat = X.reshape(-1, X.shape[-1]).astype(np.float64)
        if np.isnan(flat).any():  # variable-length sequences are pre-padded with NaN: statistics of real samples
            flat = flat[~np.isnan(flat).any(axis=1)]
        compander = None
        if compand and len(flat):
            center, scale = zip(*(heavy_tailed_scale(flat[:, j]) for j in range(flat.shape[1])))
            compander = Compander.from_lists(list(center), list(scale))
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
        return ([float(v) for v in c.center], [float(v) for v in c.scale]) if c is not None else ([], [])

    @classmethod
    def from_lists(
        cls,
        mean: Sequence[float],
        std: Sequence[float],
        center: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
    ) -> Normalization:
        compander = Compander.from_lists(center, scale)
        return cls(np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32), compander)
