"""Sensor data in: CSV files, folders of CSV recordings and NPZ arrays read into one Dataset, with the NaN
policy applied. numpy only, so the device side and the tests can use it without TensorFlow."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import InputError

NAN_POLICIES = ("error", "drop", "interpolate")
TIME_COLUMNS = ("time", "timestamp", "t")


@dataclass
class Recording:
    """One continuous stream: x [n, F]; y [n] (class index) or [n, K] (regression targets) or None."""

    name: str
    x: np.ndarray
    y: np.ndarray | None = None
    subject: str | None = None  # who (or which device) recorded it: --split-by subject keeps a subject whole


@dataclass
class Windows:
    """Model-ready windows: X [N, T, F]; y [N] class index or [N, K] targets; groups [N] recording ids;
    subjects [N] subject ids where the data names them."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    starts: np.ndarray | None = None
    subjects: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.X)

    def take(self, idx: np.ndarray) -> Windows:
        starts = None if self.starts is None else self.starts[idx]
        subjects = None if self.subjects is None else self.subjects[idx]
        return Windows(self.X[idx], self.y[idx], self.groups[idx], starts, subjects)


@dataclass
class Dataset:
    """What a reader found: continuous recordings, or (NPZ) windows made elsewhere."""

    source: str
    channels: list[str]
    recordings: list[Recording] = field(default_factory=list)
    windows: Windows | None = None
    labels: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    sample_rate: float | None = None
    columns: dict = field(default_factory=dict)  # ColumnSpec.record() of how it was read (config.training)

    @property
    def n_features(self) -> int:
        return len(self.channels)


@dataclass
class ColumnSpec:
    """Which CSV columns mean what. `task` decides whether the label column is a class or a numeric target."""

    task: str = "classify"
    label_col: str = "label"
    target_cols: Sequence[str] = ()
    group_col: str = "recording"
    channels: Sequence[str] = ()
    nan: str = "error"
    subject_col: str | None = None
    sequences: bool = False  # each CSV recording is one sequence of its own length (as_sequences)

    def record(self) -> dict:
        """What training stores (config.training["columns"]) so its splits can be rebuilt from the same columns."""
        return {
            "label_col": self.label_col,
            "target_cols": list(self.target_cols),
            "group_col": self.group_col,
            "subject_col": self.subject_col,
            "channels": list(self.channels),
            "nan": self.nan,
            "sequences": self.sequences,
        }


# ----------------------------------------------------------------------------------------------- readers


def load(path: str | Path, spec: ColumnSpec | None = None) -> Dataset:
    """Read a CSV file, a folder of CSV recordings, or an NPZ file."""
    spec = spec or ColumnSpec()
    if spec.nan not in NAN_POLICIES:
        raise InputError(f"unknown NaN policy {spec.nan!r}; choose one of {', '.join(NAN_POLICIES)}")
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if p.is_dir():
        ds = _read_csv_folder(p, spec)
    elif p.suffix.lower() == ".npz":
        ds = _read_npz(p, spec)
    else:
        ds = _read_csv_file(p, spec, multi_recording=True)
    if spec.sequences:
        ds = as_sequences(ds, spec.task)
    ds.columns = spec.record()
    return ds


@dataclass
class _Table:
    header: list[str]
    values: np.ndarray  # float64 [n, numeric columns], NaN where the cell was NaN/inf
    text: dict[str, list[str]]  # non-numeric columns kept as text (label, recording id)
    lines: np.ndarray  # 1-based file line of each row


def _parse_csv(path: Path, text_cols: set[str], check_header=None) -> _Table:
    """The CSV as a table; `check_header(header)` may refuse the header before any row is parsed (so a missing
    --label-col column is named as missing, not as 'column label: not a number')."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a UTF-8 BOM is not part of the header
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text CSV file") from None
    except csv.Error as ex:  # e.g. a cell over the csv module's field limit (131,072 characters)
        raise InputError(f"{path}: not a readable CSV file ({ex})") from None
    except OSError as ex:
        raise InputError(f"{path}: {ex.strerror}") from None
    rows_lines = [(i + 1, r) for i, r in enumerate(rows) if r and any(c.strip() for c in r)]
    if not rows_lines:
        raise InputError(f"{path}: empty file (expected a header row of column names)")
    _, header = rows_lines[0]
    header = [h.strip() for h in header]
    if any("\n" in h or "\r" in h for h in header):  # a quoted name spanning lines: would break every message
        bad = next(h for h in header if "\n" in h or "\r" in h)
        raise InputError(f"{path}: a column name holds a line break ({bad[:40]!r}); column names are single-line")
    if len(set(header)) != len(header):
        raise InputError(f"{path} line {rows_lines[0][0]}: duplicate column names in header")
    if check_header:
        check_header(header)
    body = rows_lines[1:]
    if not body:
        raise InputError(f"{path}: no data rows after the header")
    numeric = [i for i, h in enumerate(header) if h not in text_cols]
    text_idx = {h: i for i, h in enumerate(header) if h in text_cols}
    values = np.empty((len(body), len(numeric)), dtype=np.float64)
    text: dict[str, list[str]] = {h: [] for h in text_idx}
    lines = np.empty(len(body), dtype=np.int64)
    width = len(header)
    for r, (line, row) in enumerate(body):
        if len(row) != width:
            raise InputError(f"{path} line {line}: expected {width} values, found {len(row)}")
        lines[r] = line
        for j, i in enumerate(numeric):
            cell = row[i].strip()
            try:
                values[r, j] = float(cell)
            except ValueError:
                raise InputError(f"{path} line {line}, column {header[i]}: not a number: {cell!r}") from None
        for h, i in text_idx.items():
            cell = row[i].strip()
            if "\n" in cell or "\r" in cell:
                raise InputError(f"{path} line {line}, column {h}: a line break inside the cell ({cell[:40]!r})")
            text[h].append(cell)
    return _Table(header, values, text, lines)


def _read_csv_file(path: Path, spec: ColumnSpec, multi_recording: bool) -> Dataset:
    text_cols = {spec.group_col} if multi_recording else set()
    if spec.task == "classify":
        text_cols.add(spec.label_col)
    if spec.subject_col:
        text_cols.add(spec.subject_col)

    def check_header(header: list[str]) -> None:
        if spec.subject_col and spec.subject_col not in header:
            raise InputError(f"{path}: no subject column {spec.subject_col!r} (columns: {', '.join(header)})")
        if spec.task == "classify" and spec.label_col not in header:
            raise InputError(
                f"{path}: no label column {spec.label_col!r} (columns: {', '.join(header)}); name it with --label-col"
            )
        named = [("target", t, "--target-col") for t in spec.target_cols] + [
            ("channel", c, "--channels") for c in spec.channels
        ]
        for what, name, option in named:  # before any row: a row would blame a real column for the missing one
            if name not in header:
                raise InputError(f"{path}: no {what} column {name!r} (columns: {', '.join(header)}); check {option}")

    table = _parse_csv(path, text_cols, check_header)
    header = table.header
    numeric_names = [h for h in header if h not in text_cols]
    col = {h: j for j, h in enumerate(numeric_names)}

    targets: list[str] = []
    if spec.task == "regress":
        targets = list(spec.target_cols) or ([spec.label_col] if spec.label_col in col else [])
        if not targets:
            raise InputError(
                f"{path}: no target column {spec.label_col!r} (columns: {', '.join(header)}); name it with --target-col"
            )
    missing = [t for t in targets if t not in col]
    if missing:
        raise InputError(f"{path}: no target column {missing[0]!r} (columns: {', '.join(header)})")

    time_col = next((h for h in TIME_COLUMNS if h in col and h not in spec.channels), None)
    if spec.channels:
        absent = [c for c in spec.channels if c not in col]
        if absent:
            raise InputError(f"{path}: no channel column {absent[0]!r} (columns: {', '.join(header)})")
        channels = list(spec.channels)
    else:
        channels = [h for h in numeric_names if h not in targets and h != time_col]
    if not channels:
        raise InputError(f"{path}: no numeric channel columns besides labels/targets")
    if spec.task == "forecast":
        targets = list(spec.target_cols) or channels
        absent = [t for t in targets if t not in channels]
        if absent:
            raise InputError(f"{path}: forecast target {absent[0]!r} is not one of the channels")

    used = channels + [t for t in targets if t not in channels and spec.task == "regress"]
    if time_col:
        used.append(time_col)
    vals = table.values[:, [col[h] for h in used]]

    groups = table.text.get(spec.group_col) if multi_recording and spec.group_col in header else None
    names = groups if groups is not None else [path.stem] * len(vals)
    order: list[str] = list(dict.fromkeys(names))
    names_arr = np.asarray(names)
    label_text = table.text.get(spec.label_col)
    labels = sort_labels(set(label_text)) if label_text is not None else []
    if label_text is not None and "" in labels:
        line = int(table.lines[label_text.index("")])
        raise InputError(f"{path} line {line}, column {spec.label_col}: empty label")
    label_idx = {name: i for i, name in enumerate(labels)}
    subject_text = table.text.get(spec.subject_col) if spec.subject_col else None

    recs: list[Recording] = []
    rates: list[float] = []
    for name in order:
        rows = np.nonzero(names_arr == name)[0]
        v = vals[rows]
        keep = _apply_nan_policy(v, table.lines[rows], used, path, spec.nan)
        if keep is not None:
            v, rows = v[keep], rows[keep]
        y = None
        if spec.task == "classify":
            y = np.array([label_idx[label_text[r]] for r in rows], dtype=np.int64)
        elif spec.task == "regress":
            y = v[:, [used.index(t) for t in targets]].astype(np.float32)
        if time_col:
            dt = np.diff(v[:, -1])
            dt = dt[dt > 0]
            if len(dt):
                rates.append(round(1.0 / float(np.median(dt)), 6))
        subject = None
        if subject_text is not None:
            subject = _one_subject([subject_text[r] for r in rows], path, name, table.lines[rows])
        recs.append(Recording(str(name), v[:, : len(channels)].astype(np.float32), y, subject))
    rate = float(np.median(rates)) if rates else None
    return Dataset(str(path), channels, recs, None, labels, targets, rate)


def _one_subject(values: list[str], path: Path, recording: str, lines=None) -> str:
    """A recording belongs to one subject: a split by subject could not keep it whole otherwise."""
    found = list(dict.fromkeys(values))
    if len(found) != 1 or found[0] == "":
        where = f" (line {int(lines[0])})" if lines is not None and len(lines) else ""
        raise InputError(f"{path}: recording {recording!r} has subject ids {found[:3]}{where}; a recording needs one")
    return found[0]


def relabel(ds: Dataset, labels: list[str], why: str) -> None:
    """Re-index `ds`'s class ids (windows and recordings) into `labels`, the list a model or its training data
    uses; a class not in it is an error ending in `why` (e.g. "do not occur in train.csv")."""
    if not ds.labels or ds.labels == labels:
        return
    unknown = sorted(set(ds.labels) - set(labels))
    if unknown:
        raise InputError(f"{ds.source}: labels {', '.join(unknown)} {why}")
    remap = np.array([labels.index(lab) for lab in ds.labels], dtype=np.int64)
    if ds.windows is not None:
        ds.windows.y = remap[ds.windows.y]
    for rec in ds.recordings:
        rec.y = remap[rec.y]
    ds.labels = list(labels)


def sort_labels(names: set[str]) -> list[str]:
    """Class names in a stable order: numerically when they are all numbers ("2" before "10"), else by text."""
    try:
        return sorted(names, key=float)
    except ValueError:
        return sorted(names)


def _apply_nan_policy(v: np.ndarray, lines: np.ndarray, names: list[str], path: Path, policy: str) -> np.ndarray | None:
    """Return a row mask to keep (drop), or None; interpolation fills `v` in place. A finite value beyond float32's
    range is always an error: training computes in float32, where it is infinite (±1e308 gave a model of NaN)."""
    huge = np.abs(np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)) > np.finfo(np.float32).max
    if huge.any():
        r, c = np.argwhere(huge)[0]
        raise InputError(
            f"{path} line {int(lines[r])}, column {names[c]}: value {v[r, c]:.6g} is beyond float32's range "
            "(±3.4e38); rescale the column"
        )
    bad = ~np.isfinite(v)
    if not bad.any():
        return None
    if policy == "error":
        r, c = np.argwhere(bad)[0]
        what = "NaN" if np.isnan(v[r, c]) else "infinite"
        raise InputError(
            f"{path} line {int(lines[r])}, column {names[c]}: {what} value (choose --nan drop or --nan interpolate)"
        )
    if policy == "drop":
        return ~bad.any(axis=1)
    idx = np.arange(len(v))
    for c in range(v.shape[1]):
        ok = ~bad[:, c]
        if not ok.any():
            raise InputError(f"{path}: column {names[c]} has no finite value to interpolate from")
        v[~ok, c] = np.interp(idx[~ok], idx[ok], v[ok, c])
    return None


def csv_files(folder: Path) -> list[Path]:
    """The recordings of a folder, in the order they are read (and hashed)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file())


def content_sha256(path: str | Path) -> str:
    """SHA-256 of what `load` reads: the file's bytes; for a folder, of each CSV's name and SHA-256 in sorted order
    (an edited, added, removed or renamed recording changes it). config.json records it: a changed file is noticed."""
    import hashlib

    def file_digest(f: Path) -> bytes:
        with open(f, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").digest()

    p = Path(path)
    if not p.is_dir():
        return file_digest(p).hex()
    h = hashlib.sha256()
    for f in csv_files(p):
        h.update(f.name.encode() + b"\0" + file_digest(f))
    return h.hexdigest()


def _read_csv_folder(folder: Path, spec: ColumnSpec) -> Dataset:
    files = csv_files(folder)
    if not files:
        raise InputError(f"{folder}: no .csv recordings in this folder")
    parts = [_read_csv_file(p, spec, multi_recording=False) for p in files]
    first = parts[0]
    for p, part in zip(files[1:], parts[1:]):
        if part.channels != first.channels:
            raise InputError(f"{p}: channels {part.channels} differ from {files[0].name}'s {first.channels}")
    labels = sort_labels({name for part in parts for name in part.labels})
    recs = []
    for part in parts:
        for rec in part.recordings:
            if spec.task == "classify":  # re-index each file's labels into the folder-wide label list
                rec.y = np.array([labels.index(part.labels[i]) for i in rec.y], dtype=np.int64)
            recs.append(rec)
    rates = [p.sample_rate for p in parts if p.sample_rate]
    rate = float(np.median(rates)) if rates else None
    return Dataset(str(folder), first.channels, recs, None, labels, first.targets, rate)


def as_sequences(ds: Dataset, task: str) -> Dataset:
    """Each recording one sequence, pre-padded with NaN to the longest (the layout of an NPZ with `lengths`):
    recordings of any length are trained padded and masked, and scored and streamed from zero state, instead of
    being cut into windows (a recording shorter than the window would be dropped)."""
    if ds.windows is not None:
        raise InputError(f"{ds.source}: --sequences is for CSV recordings; an NPZ gives sequences with 'lengths'")
    if task == "forecast":
        raise InputError(f"{ds.source}: --sequences is for classification and regression")
    recs = ds.recordings
    T = max(len(r.x) for r in recs)
    X = np.full((len(recs), T, ds.n_features), np.nan, np.float32)
    ys = []
    for i, r in enumerate(recs):
        X[i, T - len(r.x) :] = r.x
        if task == "classify":
            classes = np.unique(r.y)
            if len(classes) > 1:
                names = ", ".join(ds.labels[c] for c in classes[:4])
                raise InputError(
                    f"{ds.source}: recording {r.name} holds {len(classes)} classes ({names}); with --sequences each "
                    "recording is one sequence with one label"
                )
            ys.append(int(classes[0]))
        else:
            ys.append(r.y[-1])  # the target at the last sample, where the output is read (as for windows)
    y = np.asarray(ys, np.int64 if task == "classify" else np.float32)
    subjects = np.array([r.subject or "" for r in recs]) if any(r.subject is not None for r in recs) else None
    names = np.array([r.name for r in recs])
    windows = Windows(X, y, names, np.zeros(len(recs), np.int64), subjects)
    return replace(ds, recordings=[], windows=windows)


def _padded_sequences(X: np.ndarray, lengths: np.ndarray, path: Path, task: str) -> np.ndarray:
    """Variable-length sequences (X flat [sum T, F] + `lengths`) as [N, T_max, F], pre-padded with NaN: each
    sequence ends at the last step, where the model's output is read, and the padding is masked in training."""
    if task == "forecast":
        raise InputError(f"{path}: 'lengths' (variable-length sequences) is for classification and regression")
    if X.ndim != 2:
        raise InputError(
            f"{path}: with 'lengths', X must be the sequences one after another, [sum T, F]; found shape "
            f"{list(X.shape)}"
        )
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu" or len(lengths) == 0 or lengths.min() < 1:
        raise InputError(f"{path}: 'lengths' must be whole numbers of at least 1, one per sequence")
    if int(lengths.sum()) != len(X):
        raise InputError(f"{path}: 'lengths' add up to {int(lengths.sum())} samples but X has {len(X)}")
    if not np.isfinite(X).all():
        where = np.argwhere(~np.isfinite(X))[0].tolist()
        raise InputError(f"{path}: X has a NaN/inf value at index {where} (clean NPZ data before use)")
    T = int(lengths.max())
    out = np.full((len(lengths), T, X.shape[1]), np.nan, np.float32)
    ends = np.cumsum(lengths)
    for i, (end, n) in enumerate(zip(ends, lengths)):
        out[i, T - n :] = X[end - n : end]
    return out


def _check_npz_y(y: np.ndarray, task: str, path: Path) -> None:
    """y's shape and values before they are used: a 0-d or 2-D class array and NaN classes crashed or were
    reported as 'y has class 1 but only 2 labels' before."""
    if y.ndim == 0:
        raise InputError(f"{path}: y must have one entry per row of X, found a single value")
    if task == "classify":
        if y.ndim != 1:
            raise InputError(f"{path}: y must be one class per row [N], found shape {list(y.shape)}")
        if y.dtype.kind == "f":
            if not np.isfinite(y).all():
                raise InputError(
                    f"{path}: y holds NaN or infinite class values at row {int(np.argmin(np.isfinite(y)))}"
                )
            if (y != np.round(y)).any():
                raise InputError(f"{path}: y holds class numbers that are not whole numbers")
        elif y.dtype.kind not in "iuUSb":
            raise InputError(f"{path}: y must be class numbers or names, found dtype {y.dtype}")
    else:
        if y.ndim > 2 or y.dtype.kind not in "fiub":
            raise InputError(f"{path}: y must be numbers [N] or [N, targets], found {y.dtype} {list(y.shape)}")
        if not np.isfinite(y.astype(np.float64)).all():
            raise InputError(f"{path}: y holds NaN or infinite values")


def _read_npz(path: Path, spec: ColumnSpec) -> Dataset:
    try:
        z = np.load(path, allow_pickle=False)
        arrays = {k: z[k] for k in z.files}
    except Exception as ex:  # numpy raises several types for a damaged archive
        raise InputError(f"{path}: not a readable NPZ file ({type(ex).__name__})") from None
    if "X" not in arrays:
        raise InputError(f"{path}: no array 'X' (found: {', '.join(arrays) or 'none'})")
    for name in ("labels", "groups", "subjects", "channels", "lengths"):  # one entry each: a list, never a scalar
        if name in arrays and arrays[name].ndim != 1:
            raise InputError(f"{path}: '{name}' must be a 1-D array, found shape {list(arrays[name].shape)}")
    X = arrays["X"]
    if X.dtype.kind not in "fiu":
        raise InputError(f"{path}: X must be numeric, found dtype {X.dtype}")
    X = X.astype(np.float32)
    lengths = arrays.get("lengths")
    if lengths is not None:
        X = _padded_sequences(X, lengths, path, spec.task)
    if X.ndim not in (2, 3):
        raise InputError(f"{path}: X must be [N, T, F] windows or [N, F] samples, found shape {X.shape}")
    y = arrays.get("y")
    if spec.task != "forecast" and y is None:
        raise InputError(f"{path}: no array 'y' (labels or targets) for task {spec.task}")
    if len(X) == 0 or X.shape[-1] == 0 or (X.ndim == 3 and X.shape[1] == 0):
        what = "rows" if len(X) == 0 else ("features" if X.shape[-1] == 0 else "time steps")
        raise InputError(f"{path}: X has no {what} (shape {list(X.shape)})")
    if y is not None:
        _check_npz_y(y, spec.task, path)
    if y is not None and len(y) != len(X):
        raise InputError(f"{path}: y has {len(y)} rows but X has {len(X)}")
    labels: list[str] = [str(s) for s in arrays["labels"]] if "labels" in arrays else []
    if spec.task == "classify":
        if y.dtype.kind in "US":
            labels = sorted(set(y.tolist()))
            y = np.array([labels.index(s) for s in y.tolist()], dtype=np.int64)
        else:
            y = y.astype(np.int64)
            labels = labels or [str(i) for i in range(int(y.max()) + 1)]
            if y.min() < 0 or y.max() >= len(labels):
                raise InputError(f"{path}: y has class {int(y.max())} but only {len(labels)} labels")
    elif y is not None:
        y = y.astype(np.float32)
        if y.ndim == 1:
            y = y[:, None]
    bad = ~np.isfinite(X) if lengths is None else np.isinf(X)  # padding is NaN by construction
    if bad.any():
        where = np.argwhere(bad)[0].tolist()
        raise InputError(f"{path}: X has a NaN/inf value at index {where} (clean NPZ data before use)")
    F = X.shape[-1]
    channels = [str(c) for c in arrays["channels"]] if "channels" in arrays else [f"ch{i}" for i in range(F)]
    if len(channels) != F:
        raise InputError(f"{path}: {len(channels)} channel names for {F} features")
    groups = arrays.get("groups")
    if groups is not None and len(groups) != len(X):
        raise InputError(f"{path}: groups has {len(groups)} rows but X has {len(X)}")
    subjects = arrays.get("subjects")
    if subjects is not None:
        if subjects.ndim != 1 or len(subjects) != len(X):
            raise InputError(
                f"{path}: subjects must have one entry per row of X ({len(X)}), found shape {list(subjects.shape)}"
            )
        subjects = subjects.astype(str)
    targets = channels if spec.task == "forecast" else ([] if spec.task == "classify" else ["y"])
    if X.ndim == 3:
        if spec.task == "forecast":
            raise InputError(f"{path}: forecasting needs a continuous stream X [N, F], not windows")
        g = np.asarray(groups).astype(str) if groups is not None else np.arange(len(X)).astype(str)
        return Dataset(str(path), channels, [], Windows(X, y, g, subjects=subjects), labels, targets)
    g = np.asarray(groups).astype(str) if groups is not None else np.full(len(X), path.stem)
    recs = []
    for name in dict.fromkeys(g.tolist()):
        rows = np.nonzero(g == name)[0]
        subject = None if subjects is None else _one_subject(subjects[rows].tolist(), path, name)
        recs.append(Recording(name, X[rows], None if y is None else y[rows], subject))
    return Dataset(str(path), channels, recs, None, labels, targets)
