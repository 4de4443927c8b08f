"""From a dataset to split, windowed and normalized arrays: the one path training, distillation and evaluation share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..models.config import ModelConfig
from .dataset import ColumnSpec, Dataset, Windows, load
from .normalize import Normalization
from .splits import split_recordings, split_windows
from .windows import make_windows


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


def prepare(ds: Dataset, window: int, stride: int, task: str, horizon: int = 1, seed: int = 0) -> Prepared:
    """Split by recording first, then window each split, then fit normalization on the training split only."""
    tidx = target_indices(ds, task)
    too_little = InputError(
        f"{ds.source}: too little data for train, validation and test splits by recording; "
        "add recordings, or lower --window or --stride"
    )
    if ds.windows is not None:
        if ds.windows.X.shape[1] != window:
            raise InputError(
                f"{ds.source}: holds windows of {ds.windows.X.shape[1]} samples; pass --window {ds.windows.X.shape[1]}"
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


def training_columns(cfg: ModelConfig) -> ColumnSpec:
    """The ColumnSpec training read its data with: label, recording column and NaN policy as recorded in
    config.training["columns"] (model dirs from before that record get the defaults), channels and targets as
    resolved then (cfg.channels, cfg.targets)."""
    rec = cfg.training.get("columns") or {}
    defaults = ColumnSpec()
    return ColumnSpec(
        task=cfg.task,
        label_col=rec.get("label_col", defaults.label_col),
        target_cols=tuple(cfg.targets) if cfg.task != "classify" else (),
        group_col=rec.get("group_col", defaults.group_col),
        channels=tuple(cfg.channels),
        nan=rec.get("nan", defaults.nan),
    )


def load_splits(cfg: ModelConfig, data: str | Path | None = None):
    """The splits training used: same data, same seed (config.training)."""
    source = data or cfg.training.get("data")
    if not source:
        raise InputError("the model directory does not record its training data; pass the data explicitly")
    ds = load(source, training_columns(cfg))
    return prepare(ds, cfg.window, cfg.stride, cfg.task, cfg.horizon, seed=int(cfg.training.get("seed", 0)))
