"""Train/validation/test splits by recording (stratified by class) or by window, so no recording feeds both
training and test."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from .dataset import Recording, Windows
from .windows import majority

SPLIT_BY = ("subject", "recording", "time")
FRACTIONS = (0.7, 0.15, 0.15)


def fractions_for(val_given: bool, test_given: bool) -> tuple[float, float, float]:
    """What of the training data goes to train/validation/test when the user gave a validation or test file:
    nothing of it is held out for a split the user supplied."""
    val = 0.0 if val_given else FRACTIONS[1]
    test = 0.0 if test_given else FRACTIONS[2]
    return (1.0 - val - test, val, test)


def assign_groups(
    groups: Sequence[str],
    strata: Sequence[int],
    fractions: tuple[float, float, float] = FRACTIONS,
    seed: int = 0,
) -> dict[str, int]:
    """Give each group (recording or subject) one split: 0 train, 1 validation, 2 test, stratified by `strata`.

    Every stratum with at least three groups puts at least one in each split that has a share, so the test set
    sees every class.
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
        n_test = (max(1, round(fractions[2] * n)) if n >= 3 else 0) if fractions[2] else 0
        n_val = (max(1, round(fractions[1] * n)) if n >= 3 else (1 if n == 2 else 0)) if fractions[1] else 0
        for i, g in enumerate(gs):
            out[g] = 2 if i < n_test else 1 if i < n_test + n_val else 0
    return out


def _time_split(recs: Sequence[Recording], fractions) -> tuple[list[Recording], ...]:
    """Each recording cut into contiguous blocks (train, then validation, then test): no window spans two."""
    parts: tuple[list[Recording], ...] = ([], [], [])
    for rec in recs:
        n = len(rec.x)
        a = int(n * fractions[0])
        b = int(n * (fractions[0] + fractions[1]))
        for k, (lo, hi) in enumerate(((0, a), (a, b), (b, n))):
            if hi > lo:
                y = None if rec.y is None else rec.y[lo:hi]
                parts[k].append(Recording(f"{rec.name}#{('train', 'val', 'test')[k]}", rec.x[lo:hi], y, rec.subject))
    return parts


def _need_subjects(source: str) -> InputError:
    return InputError(
        f"{source}: --split-by subject needs subject ids: an NPZ array 'subjects', or a CSV column named with "
        "--subject-col"
    )


def split_recordings(
    recs: Sequence[Recording],
    task: str,
    fractions: tuple[float, float, float] = FRACTIONS,
    seed: int = 0,
    by: str = "recording",
    source: str = "data",
) -> tuple[list[Recording], list[Recording], list[Recording]]:
    """Split by subject or by recording, never across one; by time, or with fewer than three recordings, each
    recording is cut in time."""
    if by == "time" or (by == "recording" and len(recs) < 3):
        return _time_split(recs, fractions)  # type: ignore[return-value]
    if by == "subject":
        if any(r.subject is None for r in recs):
            raise _need_subjects(source)
        keys = [r.subject for r in recs]
    else:
        keys = [r.name for r in recs]
    if by == "recording" and len(set(keys)) != len(keys):
        raise InputError("recording names must be unique")
    uniq = list(dict.fromkeys(keys))
    if task == "classify":
        strata = [majority(np.concatenate([r.y for r, k in zip(recs, keys) if k == u])) for u in uniq]
    else:
        strata = [0] * len(uniq)
    split = assign_groups(uniq, strata, fractions, seed)
    out: tuple[list[Recording], ...] = ([], [], [])
    for rec, key in zip(recs, keys):
        out[split[key]].append(rec)
    return out  # type: ignore[return-value]


def split_windows(
    w: Windows,
    task: str,
    fractions: tuple[float, float, float] = FRACTIONS,
    seed: int = 0,
    by: str = "recording",
    source: str = "data",
) -> tuple[Windows, Windows, Windows]:
    """Split ready-made windows by their subject or group (no subject or recording lands in two splits), or by
    time: contiguous blocks of windows in file order."""
    if by == "time":
        n = len(w)
        a, b = int(n * fractions[0]), int(n * (fractions[0] + fractions[1]))
        return tuple(w.take(np.arange(lo, hi)) for lo, hi in ((0, a), (a, b), (b, n)))  # type: ignore[return-value]
    if by == "subject":
        if w.subjects is None:
            raise _need_subjects(source)
        keys = w.subjects
    else:
        keys = w.groups
    uniq = list(dict.fromkeys(keys.tolist()))
    if task == "classify":
        strata = [majority(w.y[keys == g]) for g in uniq]
    else:
        strata = [0] * len(uniq)
    split = assign_groups(uniq, strata, fractions, seed)
    which = np.array([split[g] for g in keys.tolist()])
    return tuple(w.take(np.nonzero(which == k)[0]) for k in range(3))  # type: ignore[return-value]


def describe_split(train: Windows, val: Windows, test: Windows) -> str:
    def n_of(w: Windows, subjects: bool) -> int:
        return len(set((w.subjects if subjects else w.groups).tolist()))

    subjects = all(w.subjects is not None for w in (train, val, test))
    unit = "subjects" if subjects else "recordings"
    return (
        f"{len(train)} train / {len(val)} validation / {len(test)} test windows "
        f"from {n_of(train, subjects)} / {n_of(val, subjects)} / {n_of(test, subjects)} {unit}"
    )
