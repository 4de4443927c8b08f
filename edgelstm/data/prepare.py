"""From a dataset to split, windowed and normalized arrays: the one path training, distillation and evaluation share."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..models.config import PAD, ModelConfig
from .dataset import ColumnSpec, Dataset, Windows, content_sha256, load, relabel
from .normalize import Normalization
from .splits import fractions_for, split_recordings, split_windows
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


def prepare(
    ds: Dataset,
    window: int,
    stride: int,
    task: str,
    horizon: int = 1,
    seed: int = 0,
    val: Dataset | None = None,
    test: Dataset | None = None,
    split_by: str = "recording",
    hold_out_test: bool = True,
    frame: int = 1,
    input_map: str = "linear",
    hold_out_val: bool = True,
) -> Prepared:
    """Split first (by subject, recording or time; a validation or test set the user gave replaces that share of
    `ds`), then window each split, then fit normalization on the training split only. hold_out_test=False keeps
    no test split (cross-validation's final model: its figures are the folds'); hold_out_val=False none for
    validation (a model that chooses nothing on it: its validation split is the test split). input_map: a
    classifier's (INPUT_MAPS; regression and forecast inputs stay linear, as their targets share the inputs'
    units)."""
    tidx = target_indices(ds, task)
    fractions = fractions_for(val is not None or not hold_out_val, test is not None or not hold_out_test)
    unit = {"subject": "subject", "time": "time"}.get(split_by, "recording")
    too_little = InputError(
        f"{ds.source}: too little data for train, validation and test splits by {unit}; "
        "add recordings, or lower --window or --stride"
    )

    def windows_of(d: Dataset, recs=None) -> Windows:
        if recs is None and d.windows is not None:
            return fit_length(d.windows, window, d.source, frame)
        return make_windows(
            d.recordings if recs is None else recs, window, stride, task, horizon, tidx or None, d.source
        )

    if ds.windows is not None:
        parts = list(
            split_windows(fit_length(ds.windows, window, ds.source, frame), task, fractions, seed, split_by, ds.source)
        )
    else:
        # windowing everything first names the data when the window is longer than every recording
        make_windows(ds.recordings, window, stride, task, horizon, tidx or None, ds.source)
        parts = []
        for share, recs in zip(fractions, split_recordings(ds.recordings, task, fractions, seed, split_by, ds.source)):
            try:
                parts.append(windows_of(ds, recs) if share else None)
            except InputError:
                raise too_little from None
    for k, given in ((1, val), (2, test)):
        if given is not None:
            _check_same_kind(ds, given)
            parts[k] = windows_of(given)
    if test is None and not hold_out_test:
        parts[2] = parts[0].take(np.arange(0))
    if val is None and not hold_out_val:
        parts[1] = parts[2]
    train, val_w, test_w = parts
    needed = [train] + ([val_w] if hold_out_val or val is not None else [])
    needed += [test_w] if hold_out_test or test is not None else []
    if any(p is None or len(p) == 0 for p in needed):
        raise too_little
    norm = Normalization.fit(train.X, input_map if task == "classify" else "linear")
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
    return Prepared(train, val_w, test_w, norm, tnorm, tidx, n_out)


def fit_length(w: Windows, window: int, source: str, frame: int = 1) -> Windows:
    """Windows of exactly `window` samples (pad_to)."""
    X = pad_to(w.X, window, source, frame)
    return w if X is w.X else replace(w, X=X)


def pad_to(X: np.ndarray, window: int, source: str, frame: int = 1) -> np.ndarray:
    """[N, window, F]: variable-length sequences (NaN-padded) shorter than that get more padding in front; fixed
    windows must already fit, except that a model stepping `frame` samples at a time drops the oldest T mod frame
    samples (its window is a whole number of frames)."""
    T = X.shape[1]
    if T == window:
        return X
    padded = bool(np.isnan(X).any())
    if not padded and 0 < T - window < frame:
        return X[:, T - window :]
    if T < window and padded:
        return np.concatenate([np.full((len(X), window - T, X.shape[2]), np.nan, np.float32), X], axis=1)
    if not padded:
        raise InputError(f"{source}: holds windows of {T} samples; the model's are {window} (pass --window {T})")
    raise InputError(f"{source}: holds sequences of up to {T} samples; the model takes at most {window}")


def model_inputs(cfg: ModelConfig, X: np.ndarray, keep_padding: bool = False) -> np.ndarray:
    """Normalized model inputs. Variable-length sequences arrive pre-padded with NaN (never a sample's value:
    readers refuse NaN); the Keras model sees PAD there, which its Masking layer skips, so each sequence starts
    from zero state as the step model does. keep_padding=True keeps NaN (the step engine skips those steps)."""
    Z = normalization_of(cfg).apply(X)
    if cfg.frame > 1:  # a frame partly in the padding: its missing samples are PAD, so only whole frames are masked
        from ..runtime.engine import whole_frames

        Z = whole_frames(Z, cfg.frame, np.float32(PAD))
    if not keep_padding and np.isnan(Z).any():
        Z = np.where(np.isnan(Z), np.float32(PAD), Z)
    return Z


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
        subject_col=rec.get("subject_col"),
        channels=tuple(cfg.channels),
        nan=rec.get("nan", defaults.nan),
        sequences=bool(rec.get("sequences", False)),
    )


DATA_KEYS = ("data", "val_data", "test_data")


def data_record(ds: Dataset, val: Dataset | None = None, test: Dataset | None = None) -> dict:
    """What config.json keeps of the data training read: each path (absolute) and the SHA-256 of its content,
    so later steps that read it again (calibration, the report, evaluate --split test) notice a changed file."""
    rec: dict = {}
    for key, d in zip(DATA_KEYS, (ds, val, test)):
        rec[key] = str(Path(d.source).absolute()) if d is not None else None
        # a cross-validation fold's part ("DATA fold 2") is no file of its own: nothing to hash
        real = d is not None and Path(d.source).exists()
        rec[f"{key}_sha256"] = content_sha256(d.source) if real else None
    return rec


def check_training_data(cfg: ModelConfig, data: str | Path | None, where: str | Path) -> None:
    """Before any work that needs the training data (calibration, the accuracy report, evaluate --split test): it
    must be there and be what training read. A model directory trained elsewhere records a path that may not exist
    here (say how to give the data instead); a file changed since training would give other splits, so the
    "held-out" windows could be ones the model trained on: refused (no override — other data for calibration is an
    NPZ, `--calibration X.npz`; other data to score is `evaluate MODEL DATA`)."""
    import os

    if data is None and not cfg.training.get("data"):
        raise InputError(f"{where}: the model directory does not record its training data; give it with --data PATH")
    for key in DATA_KEYS:
        p = str(data) if key == "data" and data is not None else cfg.training.get(key)
        if not p:
            continue
        if not Path(p).exists():
            if p == str(data):
                raise InputError(f"{data}: no such file or directory (--data)")
            rel = "" if Path(p).is_absolute() else f", relative to {os.getcwd()}"
            raise InputError(
                f"{where}: its training data {p} (recorded in config.json{rel}) is not there; "
                "give the same data with --data PATH"
            )
        recorded = cfg.training.get(f"{key}_sha256")
        now = content_sha256(p) if recorded else None
        if now != recorded:
            if p == str(data):
                raise InputError(
                    f"{data}: not the data {where} was trained on (sha256 {now[:12]}…, config.json records "
                    f"{recorded[:12]}…); give the training data itself with --data PATH"
                )
            what, fix = ("training data", "give the data it was trained on with --data PATH")
            if key != "data":
                what = "validation data" if key == "val_data" else "test data"
                fix = "put back the file it was trained with"
            raise InputError(
                f"{where}: its {what} {p} changed since training (sha256 {now[:12]}…, config.json records "
                f"{recorded[:12]}…); {fix}"
            )


def trained_on_all(cfg: ModelConfig) -> bool:
    """Whether training held out no test split: the final model of cross-validation or tune, given no test file
    (its held-out figures are the folds')."""
    t = cfg.training
    return bool(t.get("cv") or t.get("tune")) and not t.get("test_data")


def load_splits(cfg: ModelConfig, data: str | Path | None = None):
    """The splits training used: same data, same seed, the same shares held out (config.training): no test split
    for a model trained on all of its data (`trained_on_all`)."""
    source = data or cfg.training.get("data")
    if not source:
        raise InputError("the model directory does not record its training data; pass the data explicitly")
    spec = training_columns(cfg)
    ds = load(source, spec)
    given = {
        k: load(cfg.training[f"{k}_data"], spec) if cfg.training.get(f"{k}_data") else None for k in ("val", "test")
    }
    return prepare(
        ds,
        cfg.window,
        cfg.stride,
        cfg.task,
        cfg.horizon,
        seed=int(cfg.training.get("seed", 0)),
        split_by=cfg.training.get("split_by", "recording"),
        frame=cfg.frame,
        input_map=input_map_of(cfg),
        hold_out_test=not trained_on_all(cfg),
        **given,
    )


def normalization_of(cfg: ModelConfig) -> Normalization:
    """The input normalization a model was trained with (its input map, then mean and std)."""
    return Normalization.from_lists(
        cfg.norm_mean, cfg.norm_std, cfg.compand_center, cfg.compand_scale, cfg.quantile_knots, cfg.quantile_values
    )


def input_map_of(cfg: ModelConfig) -> str:
    """Which INPUT_MAPS entry a model's normalization was fitted with (models of before input maps: compand)."""
    return cfg.training.get("input_map") or ("quantile" if cfg.quantile_knots else "compand")


def _check_same_kind(ds: Dataset, other: Dataset) -> None:
    """A validation or test set must have the training data's channels and classes (its labels are re-indexed
    into the training data's label list)."""
    if other.channels != ds.channels:
        raise InputError(f"{other.source}: channels {other.channels} differ from {ds.source}'s {ds.channels}")
    if ds.labels:
        relabel(other, ds.labels, f"do not occur in {ds.source}")
