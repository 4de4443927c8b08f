"""Leave-subject-out cross-validation: K folds by subject (else by recording), one model per fold.

A fold's test set is subjects no model of that fold saw, which is what a deployed model meets; k-fold over windows
of the same recordings overstates HAR accuracy by 10-16 points in the literature. The figures are mean ± sd over
the folds, and the pooled out-of-fold predictions (one confusion matrix over every window).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset, Windows
from ..data.windows import majority
from ..errors import InputError
from ..evaluate.metrics import score
from ..models.modeldir import check_replaceable
from .fit import Progress, TrainOptions
from .fitted import fit_either


def train_cv(
    ds: Dataset,
    opts: TrainOptions,
    out: str | Path,
    k: int,
    progress: Progress | None = None,
    val: Dataset | None = None,
    test: Dataset | None = None,
    overwrite: bool = False,
) -> dict:
    """Cross-validate k folds, then train the saved model (recurrent or rocket) on all of `ds` (but a recurrent
    model's validation share); its metrics.json holds the folds' summary, and as "test" the pooled out-of-fold
    figures (or the --test file's)."""
    opts.resolve(ds, val, test)
    opts.check()
    check_replaceable(out, overwrite)
    summary, (oof_windows, oof_outputs) = cross_validate(ds, opts, k, progress, val)
    m = fit_either(ds, opts, progress, val, test, hold_out_test=False)
    m.cfg.training["cv"] = summary["folds"]
    m.cfg.training["cv_by"] = summary["by"]
    test_metrics = None if test is not None else score(m.cfg, oof_windows, oof_outputs)
    return m.write_dir(out, {"cv": summary}, test_metrics=test_metrics, overwrite=overwrite)


def unit_keys(ds: Dataset) -> tuple[str, list[str]]:
    """("subject" | "recording", the key of each recording or NPZ window)."""
    if ds.windows is not None:
        w = ds.windows
        if w.subjects is not None:
            return "subject", w.subjects.tolist()
        return "recording", w.groups.tolist()
    if ds.recordings and all(r.subject is not None for r in ds.recordings):
        return "subject", [r.subject for r in ds.recordings]
    return "recording", [r.name for r in ds.recordings]


def assign_folds(keys: list[str], strata: list[int], k: int, seed: int) -> dict[str, int]:
    """Each unit one fold: stratified by class, dealt round-robin after a seeded shuffle, so folds differ in size
    by at most one unit and every class spreads over the folds."""
    rng = np.random.default_rng(seed)
    by_stratum: dict[int, list[str]] = {}
    for key, s in dict(zip(keys, strata)).items():
        by_stratum.setdefault(int(s), []).append(key)
    out: dict[str, int] = {}
    i = 0
    for s in sorted(by_stratum):
        units = sorted(by_stratum[s])
        rng.shuffle(units)
        for u in units:
            out[u] = i % k
            i += 1
    return out


def fold_datasets(ds: Dataset, k: int, seed: int, task: str) -> tuple[str, list[tuple[Dataset, Dataset]]]:
    """(unit, [(training part, test fold)] * k)."""
    unit, keys = unit_keys(ds)
    uniq = list(dict.fromkeys(keys))
    if len(uniq) < k:
        raise InputError(f"{ds.source}: --cv {k} needs at least {k} {unit}s; the data has {len(uniq)}")
    if task == "classify":
        ys = ds.windows.y if ds.windows is not None else [r.y for r in ds.recordings]
        label_of = {}
        for key, y in zip(keys, ys):
            label_of.setdefault(key, []).append(np.atleast_1d(y))
        strata = [majority(np.concatenate(label_of[u])) for u in uniq]
    else:
        strata = [0] * len(uniq)
    fold = assign_folds(uniq, strata, k, seed)
    which = np.array([fold[key] for key in keys])
    parts = []
    for f in range(k):
        if ds.windows is not None:
            inside, outside = np.nonzero(which == f)[0], np.nonzero(which != f)[0]
            test = replace(ds, windows=ds.windows.take(inside), source=f"{ds.source} fold {f + 1}")
            rest = replace(ds, windows=ds.windows.take(outside))
        else:
            test = replace(
                ds, recordings=[r for r, w in zip(ds.recordings, which) if w == f], source=f"{ds.source} fold {f + 1}"
            )
            rest = replace(ds, recordings=[r for r, w in zip(ds.recordings, which) if w != f])
        parts.append((rest, test))
    return unit, parts


def cross_validate(
    ds: Dataset, opts: TrainOptions, k: int, progress: Progress | None = None, val: Dataset | None = None
) -> tuple[dict, tuple[Windows, np.ndarray]]:
    """K models, each scored on the fold it never saw: (summary for metrics.json, (pooled fold windows, their
    outputs))."""
    if k < 2:
        raise InputError("--cv needs at least 2 folds")
    if opts.split_by == "time":
        raise InputError("--cv folds by subject or recording; it does not go with --split-by time")
    say = progress or (lambda _m: None)
    unit, parts = fold_datasets(ds, k, opts.seed, opts.task)
    fold_opts = replace(opts, split_by=unit)  # each fold's validation split: by the same unit as its test fold
    rows, windows, outputs = [], [], []
    for f, (rest, test) in enumerate(parts, 1):
        say(f"cv fold {f}/{k}: testing on {len(set(unit_keys(test)[1]))} {unit}s never seen in training")
        fitted = fit_either(rest, fold_opts, None, val, test)
        out = fitted.predict(fitted.prep.test.X)
        m = score(fitted.cfg, fitted.prep.test, out)
        rows.append(m)
        windows.append(fitted.prep.test)
        outputs.append(out)
        say(f"cv fold {f}/{k}: {_headline(m, opts.task)}")
    keys = ("accuracy", "macro_f1") if opts.task == "classify" else ("rmse", "mae")
    summary = {"folds": k, "by": unit, "per_fold": [{key: m[key] for key in keys} | {"n": m["n"]} for m in rows]}
    for key in keys:
        v = np.array([m[key] for m in rows], np.float64)
        summary[key] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1))}
    pooled = Windows(
        np.concatenate([w.X for w in windows]),
        np.concatenate([w.y for w in windows]),
        np.concatenate([w.groups for w in windows]),
    )
    return summary, (pooled, np.concatenate(outputs))


def _headline(m: dict, task: str) -> str:
    if task == "classify":
        return f"accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f} ({m['n']} windows)"
    return f"RMSE {m['rmse']:.4g}, MAE {m['mae']:.4g} ({m['n']} windows)"
