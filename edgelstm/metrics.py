"""Metrics as pure numpy functions, shared by training, evaluation and the quantization report."""

from __future__ import annotations

import numpy as np


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
