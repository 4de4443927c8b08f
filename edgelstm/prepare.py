"""From a dataset to split, windowed and normalized arrays: the one path training, distillation and evaluation share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import ModelConfig
from .data import Dataset, Normalization, Windows, make_windows, split_recordings, split_windows
from .errors import InputError
from .metrics import classification, regression


@dataclass
class Prepared:
    train: Windows
    val: Windows
    test: Windows
    norm: Normalization
    target_norm: Normalization | None
    target_idx: list[int]
    n_outputs: int


def target_indices(ds: Dataset, task: str) -> list[int]:
    return [ds.channels.index(t) for t in ds.targets] if task == "forecast" else []


def prepare(
    ds: Dataset, window: int, stride: int, task: str, horizon: int = 1, seed: int = 0
) -> Prepared:
    """Split by recording first, then window each split, then fit normalization on the training split only."""
    tidx = target_indices(ds, task)
    too_little = InputError(
        f"{ds.source}: too little data for train, validation and test splits by recording; "
        "add recordings, or lower --window or --stride"
    )
    if ds.windows is not None:
        if ds.windows.X.shape[1] != window:
            raise InputError(
                f"{ds.source}: holds windows of {ds.windows.X.shape[1]} samples; pass --window "
                f"{ds.windows.X.shape[1]}"
            )
        train, val, test = split_windows(ds.windows, task, seed=seed)
    else:
        # windowing everything first names the data when the window is longer than every recording
        make_windows(ds.recordings, window, stride, task, horizon, tidx or None, ds.source)
        try:
            train, val, test = (
                make_windows(p, window, stride, task, horizon, tidx or None, ds.source)
                for p in split_recordings(ds.recordings, task, seed=seed)
            )
        except InputError:
            raise too_little from None
    if min(len(train), len(val), len(test)) == 0:
        raise too_little
    norm = Normalization.fit(train.X)
    if task == "classify":
        n_out = len(ds.labels)
        if n_out < 2:
            raise InputError(f"{ds.source}: classification needs at least two classes, found {n_out}")
        tnorm = None
    elif task == "forecast":
        reps = np.tile(np.arange(len(tidx)), horizon)
        tnorm = Normalization(norm.mean[tidx][reps], norm.std[tidx][reps])
        n_out = horizon * len(tidx)
    else:
        tnorm = Normalization.fit(train.y[:, None, :])
        n_out = train.y.shape[1]
    return Prepared(train, val, test, norm, tnorm, tidx, n_out)


def model_inputs(cfg: ModelConfig, X: np.ndarray) -> np.ndarray:
    return Normalization.from_lists(cfg.norm_mean, cfg.norm_std).apply(X)


def model_targets(cfg: ModelConfig, y: np.ndarray) -> np.ndarray:
    """Training targets: class indices as they are, numeric targets in normalized units."""
    if cfg.task == "classify":
        return y
    return Normalization.from_lists(cfg.target_mean, cfg.target_std).apply(y)


def outputs_to_units(cfg: ModelConfig, out: np.ndarray) -> np.ndarray:
    """Model outputs back to the data's units (identity for class probabilities)."""
    if cfg.task == "classify":
        return out
    return Normalization.from_lists(cfg.target_mean, cfg.target_std).invert(out)


def score(cfg: ModelConfig, w: Windows, outputs: np.ndarray) -> dict:
    """Held-out metrics of raw model outputs against the windows' truth, in the data's units."""
    if cfg.task == "classify":
        return classification(w.y, np.argmax(outputs, axis=-1), cfg.labels)
    m = regression(w.y, outputs_to_units(cfg, outputs))
    if cfg.task == "forecast":
        tidx = [cfg.channels.index(t) for t in cfg.targets]
        last = w.X[:, -1, tidx]
        persistence = np.tile(last, cfg.horizon)  # the naive forecast: the last value stays
        m["rmse_persistence"] = regression(w.y, persistence)["rmse"]
    return m
