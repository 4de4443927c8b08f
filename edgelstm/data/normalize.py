"""Per-channel standardization, fitted on the training split and stored with the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# ------------------------------------------------------------------------------------------- normalization


@dataclass
class Normalization:
    """Per-channel standardization, stored with the model so the device normalizes exactly as in training."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> Normalization:
        flat = X.reshape(-1, X.shape[-1]).astype(np.float64)
        if np.isnan(flat).any():  # variable-length sequences are pre-padded with NaN: statistics of real samples
            flat = flat[~np.isnan(flat).any(axis=1)]
        mean = flat.mean(axis=0)
        std = flat.std(axis=0)
        std[std < 1e-8] = 1.0  # a constant channel stays as it is, centred
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def apply(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.std).astype(np.float32)

    def invert(self, X: np.ndarray) -> np.ndarray:
        return (X * self.std + self.mean).astype(np.float32)

    def to_lists(self) -> tuple[list[float], list[float]]:
        return [float(v) for v in self.mean], [float(v) for v in self.std]

    @classmethod
    def from_lists(cls, mean: Sequence[float], std: Sequence[float]) -> Normalization:
        return cls(np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32))
