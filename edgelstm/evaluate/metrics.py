"""Metrics: of outputs against the truth (accuracy, macro-F1, confusion; RMSE, MAE) and of one model's outputs
against a reference's (ST Edge AI validate's RMSE, MAE, cosine, L2R, max |Δ|, argmax agreement). numpy only."""

from __future__ import annotations

import numpy as np

from ..data.dataset import Windows
from ..data.normalize import Normalization
from ..data.prepare import outputs_to_units
from ..errors import InputError
from ..models.config import ModelConfig


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return m


def classification(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, macro-F1 (over classes present in truth or prediction), per-class F1, confusion matrix."""
    n = len(labels)
    m = confusion(y_true, y_pred, n)
    tp = np.diag(m).astype(np.float64)
    fp = m.sum(axis=0) - tp
    fn = m.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(n), where=denom > 0)
    present = denom > 0
    return {
        "n": int(len(y_true)),
        "accuracy": float(tp.sum() / max(1, m.sum())),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "f1": {lab: float(v) for lab, v in zip(labels, f1)},
        "labels": list(labels),
        "confusion": m.tolist(),
    }


def change_latencies(truth: np.ndarray, pred: np.ndarray) -> list[tuple[int, int | None]]:
    """For each sample where the true class changes: (that sample, samples until the per-sample prediction first
    names the new class, or None if it does not before the next change). How late a streaming model notices."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    changes = (np.flatnonzero(truth[1:] != truth[:-1]) + 1).tolist()
    out = []
    for c, end in zip(changes, changes[1:] + [len(truth)]):
        hit = np.flatnonzero(pred[c:end] == truth[c])
        out.append((c, int(hit[0]) if len(hit) else None))
    return out


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """RMSE and MAE over every output (in the units given), plus per output column."""
    t = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    err = p - t
    return {
        "n": int(len(t)),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "rmse_per_output": np.sqrt(np.mean(err**2, axis=0)).tolist(),
    }


def scores(
    meta: dict, y_true: np.ndarray, outputs: np.ndarray, X: np.ndarray | None = None, season: int | None = None
) -> dict:
    """Metrics of outputs against the truth, in the data's units (meta: the model's metadata; a model directory's
    config says the same through `score`). Forecasts given their input windows X also get the naive baselines on
    the same windows: persistence (the last value stays) and, with `season`, seasonal-naive (the value one season
    earlier) — a forecaster that loses to them is not worth deploying."""
    if meta["task"] == "classify":
        return classification(y_true, np.argmax(outputs, axis=-1), meta["labels"])
    m = regression(y_true, outputs_in_units(meta, outputs))
    if meta["task"] == "forecast" and X is not None:
        tidx = [meta["channels"].index(t) for t in meta["targets"]]
        m.update(forecast_baselines(X, y_true, tidx, int(meta["horizon"]), season))
    return m


def outputs_in_units(meta: dict, outputs: np.ndarray) -> np.ndarray:
    """Regression/forecast outputs de-normalized with the metadata's target normalization."""
    tn = meta["target_normalization"]
    return Normalization.from_lists(tn["mean"], tn["std"]).invert(outputs) if tn else outputs


def forecast_baselines(
    X: np.ndarray, y_true: np.ndarray, tidx: list[int], horizon: int, season: int | None = None
) -> dict:
    """RMSE and MAE of the naive forecasts on the same windows (targets laid out step-major, as make_windows)."""
    T = X.shape[1]
    persistence = np.tile(X[:, -1, tidx], horizon)
    p = regression(y_true, persistence)
    out = {"rmse_persistence": p["rmse"], "mae_persistence": p["mae"]}
    if season:
        if not horizon <= season <= T:
            raise InputError(
                f"--season {season} must be at least the horizon ({horizon}) and fit in the window ({T} samples)"
            )
        # step h (1-based) is forecast by the value `season` samples before it: X[:, T + h - 1 - season]
        naive = np.concatenate([X[:, T + h - 1 - season, tidx] for h in range(1, horizon + 1)], axis=1)
        s = regression(y_true, naive)
        out.update({"season": int(season), "rmse_seasonal_naive": s["rmse"], "mae_seasonal_naive": s["mae"]})
    return out


def agreement(ref: np.ndarray, out: np.ndarray, classify: bool) -> dict:
    """How close a model's outputs are to the reference's (both raw outputs)."""
    d = (out - ref).astype(np.float64)
    a, b = ref.ravel().astype(np.float64), out.ravel().astype(np.float64)
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) if np.linalg.norm(a) * np.linalg.norm(b) else 1.0
    res = {
        "rmse": float(np.sqrt(np.mean(d**2))),
        "mae": float(np.mean(np.abs(d))),
        "cosine": cos,
        "max_abs_delta": float(np.abs(d).max()),
        "l2r": float(np.linalg.norm(d) / max(np.linalg.norm(a), 1e-12)),
    }
    if classify:
        res["argmax_agreement"] = float(np.mean(np.argmax(out, -1) == np.argmax(ref, -1)))
    return res


def score(cfg: ModelConfig, w: Windows, outputs: np.ndarray) -> dict:
    """Held-out metrics of raw model outputs against the windows' truth, in the data's units."""
    if cfg.task == "classify":
        return classification(w.y, np.argmax(outputs, axis=-1), cfg.labels)
    m = regression(w.y, outputs_to_units(cfg, outputs))
    if cfg.task == "forecast":
        m.update(forecast_baselines(w.X, w.y, [cfg.channels.index(t) for t in cfg.targets], cfg.horizon))
    return m
