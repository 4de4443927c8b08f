"""Train/validation/test splits by recording (stratified by class) or by window, so no recording feeds both
training and test."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from .dataset import Recording, Windows
from .windows import majority

# ---------------------------------------------------------------------------------------------- splits


def assign_groups(
    groups: Sequence[str],
    strata: Sequence[int],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> dict[str, int]:
    """Give each group (recording) one split: 0 train, 1 validation, 2 test, stratified by `strata`.

    Every stratum with at least three groups puts at least one in each split, so the test set sees every class.
    """
    rng = np.random.default_rng(seed)
    by_stratum: dict[int, list[str]] = {}
    for g, s in zip(groups, strata):
        by_stratum.setdefault(int(s), []).append(str(g))
    out: dict[str, int] = {}
    for s in sorted(by_stratum):
        gs = sorted(by_stratum[s])
        rng.shuffle(gs)
        n = len(gs)
        n_test = max(1, round(fractions[2] * n)) if n >= 3 else 0
        n_val = max(1, round(fractions[1] * n)) if n >= 3 else (1 if n == 2 else 0)
        for i, g in enumerate(gs):
            out[g] = 2 if i < n_test else 1 if i < n_test + n_val else 0
    return out


def split_recordings(
    recs: Sequence[Recording],
    task: str,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> tuple[list[Recording], list[Recording], list[Recording]]:
    """Split by recording, never across one; with fewer than three recordings, split each one in time.

    A time split cuts contiguous blocks (train, then validation, then test), so no window spans two splits.
    """
    if len(recs) < 3:
        parts: tuple[list[Recording], ...] = ([], [], [])
        for rec in recs:
            n = len(rec.x)
            a = int(n * fractions[0])
            b = int(n * (fractions[0] + fractions[1]))
            for k, (lo, hi) in enumerate(((0, a), (a, b), (b, n))):
                y = None if rec.y is None else rec.y[lo:hi]
                parts[k].append(Recording(f"{rec.name}#{('train', 'val', 'test')[k]}", rec.x[lo:hi], y))
        return parts  # type: ignore[return-value]
    strata = [majority(r.y) if task == "classify" and len(r.y) else 0 for r in recs]
    split = assign_groups([r.name for r in recs], strata, fractions, seed)
    if len(split) != len(recs):
        raise InputError("recording names must be unique")
    out: tuple[list[Recording], ...] = ([], [], [])
    for rec in recs:
        out[split[rec.name]].append(rec)
    return out  # type: ignore[return-value]


def split_windows(
    w: Windows, task: str, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> tuple[Windows, Windows, Windows]:
    """Split ready-made windows by their group, so no recording lands in two splits."""
    uniq = list(dict.fromkeys(w.groups.tolist()))
    if task == "classify":
        strata = [majority(w.y[w.groups == g]) for g in uniq]
    else:
        strata = [0] * len(uniq)
    split = assign_groups(uniq, strata, fractions, seed)
    which = np.array([split[g] for g in w.groups.tolist()])
    return tuple(w.take(np.nonzero(which == k)[0]) for k in range(3))  # type: ignore[return-value]


def describe_split(train: Windows, val: Windows, test: Windows) -> str:
    def n_groups(w: Windows) -> int:
        return len(set(w.groups.tolist()))

    return (
        f"{len(train)} train / {len(val)} validation / {len(test)} test windows "
        f"from {n_groups(train)} / {n_groups(val)} / {n_groups(test)} recordings"
    )
