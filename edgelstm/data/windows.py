"""Recordings cut into fixed-length windows (classification labels by majority, forecast targets after the
window)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from .dataset import Recording, Windows

# ----------------------------------------------------------------------------------------------- windows


def window_starts(n: int, window: int, stride: int, tail: int = 0) -> np.ndarray:
    """Start indices of every full window (plus `tail` samples after it) in a stream of n samples."""
    if window < 1 or stride < 1:
        raise InputError("window and stride must be at least 1")
    last = n - window - tail
    return np.arange(0, last + 1, stride) if last >= 0 else np.zeros(0, dtype=np.int64)


def make_windows(
    recs: Sequence[Recording],
    window: int,
    stride: int,
    task: str,
    horizon: int = 1,
    target_idx: Sequence[int] | None = None,
    source: str = "data",
) -> Windows:
    """Cut recordings into windows; the label of a class window is its majority (ties: the latest sample's)."""
    tail = horizon if task == "forecast" else 0
    xs, ys, gs, ss, subj = [], [], [], [], []
    for rec in recs:
        starts = window_starts(len(rec.x), window, stride, tail)
        if not len(starts):
            continue
        idx = starts[:, None] + np.arange(window)[None, :]
        xs.append(rec.x[idx])
        if task == "classify":
            lab = rec.y[idx]
            ys.append(np.array([majority(row) for row in lab], dtype=np.int64))
        elif task == "regress":
            ys.append(rec.y[starts + window - 1].astype(np.float32))
        else:
            cols = list(range(rec.x.shape[1])) if target_idx is None else list(target_idx)
            fut = starts[:, None] + window + np.arange(horizon)[None, :]
            ys.append(rec.x[fut][:, :, cols].reshape(len(starts), -1).astype(np.float32))
        gs.append(np.full(len(starts), rec.name))
        ss.append(starts)
        subj.append(np.full(len(starts), rec.subject if rec.subject is not None else ""))
    if not xs:
        longest = max((len(r.x) for r in recs), default=0)
        need = window + tail
        raise InputError(
            f"{source}: window {window}{f' + horizon {tail}' if tail else ''} is longer than every "
            f"recording (longest has {longest} samples, needs {need}); use a smaller --window"
        )
    subjects = np.concatenate(subj) if any(r.subject is not None for r in recs) else None
    return Windows(np.concatenate(xs), np.concatenate(ys), np.concatenate(gs), np.concatenate(ss), subjects)


def majority(row: np.ndarray) -> int:
    counts = np.bincount(row)
    best = np.flatnonzero(counts == counts.max())
    return int(row[-1]) if row[-1] in best else int(best[-1])
