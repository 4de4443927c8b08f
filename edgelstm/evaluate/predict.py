"""Run any model form (Keras model dir, .tflite, .onnx; step or sequence) over windows of raw samples.

A .tflite or .onnx goes through the device runner (`Runner.run_windows`: the runtime's one step engine), so what
evaluate and the accuracy report score is what the device computes: the same input mapping, state carry and
(de)quantization. A model directory runs its Keras model on the same windows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelDirError, ModelFileError


class Predictor:
    """`meta` (the metadata dict) and `predict(raw windows [N, T, F]) -> raw outputs [N, n_outputs]`."""

    meta: dict
    path: Path

    def check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float32)
        n = len(self.meta["normalization"]["mean"])
        if X.shape[-1] != n:
            raise InputError(f"data has {X.shape[-1]} features; {self.path} expects {n}")
        return X

    def predict(self, X: np.ndarray, progress: Callable[[str], None] | None = None) -> np.ndarray:
        raise NotImplementedError


class KerasPredictor(Predictor):
    reference_file = "model.keras"  # what a quantization report compares with

    def __init__(self, path: Path) -> None:
        from ..modelfile.write import build_metadata, tensor_entry
        from ..models.modeldir import load_keras

        self.path = path
        self.cfg, self.model = load_keras(path)
        c = self.cfg
        self.meta = build_metadata(
            c,
            "sequence",
            "float",
            [tensor_entry("x", "window", [1, c.window, c.n_features])],
            [tensor_entry("y", "y", [1, c.n_outputs])],
            format="keras",
        )

    @property
    def params(self) -> int:
        return int(self.model.count_params())

    def predict(self, X, progress=None):
        from ..data.prepare import model_inputs, pad_to

        X = self.check(X)
        if self.cfg.masked or self.cfg.frame > 1:  # padded in front to the model's window; whole frames
            X = pad_to(X, self.cfg.window, str(self.path), self.cfg.frame)
        return self.model.predict(model_inputs(self.cfg, X), verbose=0, batch_size=256)


class FilePredictor(Predictor):
    """A .tflite, .onnx or .rocket, run by the device runner."""

    CHUNK = 64  # windows between progress lines

    def __init__(self, path: Path) -> None:
        from ..runtime import Runner

        self.path = path
        self.runner = Runner()
        self.meta = self.runner.open(path).meta

    def predict(self, X, progress=None):
        from ..data.prepare import pad_to

        X = self.check(X)
        frame = int(self.meta.get("frame") or 1)
        if frame > 1 and self.meta.get("window"):  # whole frames, as in training
            X = pad_to(X, int(self.meta["window"]), str(self.path), frame)
        out = []
        for i in range(0, len(X), self.CHUNK):
            if progress:
                progress(f"evaluating {i}/{len(X)}")
            out.append(self.runner.run_windows(X[i : i + self.CHUNK]))
        return np.concatenate(out) if out else np.zeros((0, self.runner.info.n_outputs), np.float32)


class RocketDirPredictor(FilePredictor):
    """A rocket model directory: its float model.rocket, run by the device runner, with the directory's config."""

    reference_file = "model.rocket"

    def __init__(self, path: Path) -> None:
        from ..models.modeldir import ROCKET_FILE, load_config

        self.cfg = load_config(path)
        super().__init__(path / ROCKET_FILE)
        a = self.runner.interp.a
        self.params = int(a["weights"].size + a["thresholds"].size)


def open_model(path: str | Path) -> Predictor:
    from ..models.modeldir import ROCKET_FILE

    path = Path(path)
    if path.is_dir():
        # a rocket model directory's model is its float .rocket file, run by the same runner as on a device
        return RocketDirPredictor(path) if (path / ROCKET_FILE).is_file() else KerasPredictor(path)
    if not path.exists():
        raise ModelDirError(f"{path}: no such model (a model directory, .tflite, .onnx or .rocket)")
    if path.suffix.lower() in (".tflite", ".onnx", ".rocket"):
        return FilePredictor(path)
    raise ModelFileError(f"{path}: not a model edgelstm knows (a model directory, .tflite, .onnx or .rocket)")


def evaluate_data(
    model: str | Path,
    data: str | Path | None = None,
    label_col: str | None = None,
    group_col: str | None = None,
    progress: Callable[[str], None] | None = None,
    split: str = "all",
    stride: int | None = None,
    season: int | None = None,
    predictions: str | Path | None = None,
    model_dir: str | Path | None = None,
    training_data: str | Path | None = None,
) -> dict:
    """Metrics of any model form on windows of a dataset: every window of DATA (`split="all"`), or the held-out
    test split recorded at training (`split="test"`, DATA omitted: rebuilt from the model directory's
    config.json). Window and channels come from the model; label and recording columns as given, else as the
    model's training data had them. `stride`: classification windows at the training stride by default,
    regression and forecasts at every step (a stride that divides a daily period would score a few hours only).
    `predictions`: a CSV of per-window truth, prediction and scores. `training_data` (`--data`, split "test"): the
    training data where config.json's path is not there; checked against its recorded SHA-256 like quantize does."""
    from .metrics import scores

    test_dir = None
    if split == "test" and data is None:  # its training data there and unchanged, before the model is loaded
        from ..data.prepare import check_training_data
        from ..models.modeldir import load_config

        test_dir = _model_dir_of(Path(model), model_dir)
        check_training_data(load_config(test_dir), training_data, test_dir)
    p = open_model(model)
    m = p.meta
    if stride is not None and stride < 1:
        raise InputError("--stride must be at least 1")
    if season is not None and not int(m["horizon"]) <= season <= int(m["window"]):
        raise InputError(
            f"--season {season} must be at least the horizon ({m['horizon']}) and fit in the window "
            f"({m['window']} samples)"
        )
    if predictions is not None:
        check_writable(Path(predictions))
    if training_data is not None and split != "test":
        raise InputError("--data gives the training data of --split test; to score other data give it as DATA")
    if split == "test":
        if data is not None:
            raise InputError("--split test scores the held-out split recorded at training: give no DATA")
        w = _test_split(test_dir, training_data)
    elif split == "all":
        if data is None:
            raise InputError("give DATA, or --split test for the held-out split recorded at training")
        w = _all_windows(m, Path(model), data, label_col, group_col, stride)
    else:
        raise InputError(f"unknown split {split!r}; choose test or all")
    out = p.predict(w.X, progress)
    result = scores(m, w.y, out, X=w.X, season=season) | {"split": split}
    if predictions is not None:
        write_predictions(Path(predictions), m, w, out)
        result["predictions"] = str(predictions)
    return result


def _all_windows(m: dict, model: Path, data, label_col, group_col, stride):
    from ..data.dataset import ColumnSpec, load, relabel
    from ..data.windows import make_windows

    trained = m.get("columns") or {}
    spec = ColumnSpec(
        task=m["task"],
        label_col=label_col or trained.get("label_col") or ColumnSpec.label_col,
        group_col=group_col or trained.get("group_col") or ColumnSpec.group_col,
        target_cols=tuple(m["targets"]) if m["task"] != "classify" else (),
        channels=tuple(m["channels"]),
        sequences=bool(trained.get("sequences", False)),
    )
    ds = load(data, spec)
    if ds.n_features != m["n_features"]:
        raise InputError(f"{data}: has {ds.n_features} channels; {model} expects {m['n_features']}")
    if m["task"] == "classify" and m["labels"]:
        relabel(ds, m["labels"], f"are not classes of {model}")
    if ds.windows is not None:
        w = ds.windows
    else:
        tidx = [ds.channels.index(t) for t in m["targets"]] if m["task"] == "forecast" else None
        step = stride or (m["stride"] if m["task"] == "classify" else 1)
        w = make_windows(ds.recordings, m["window"], step, m["task"], m["horizon"], tidx, ds.source)
    return w


def _model_dir_of(model: Path, model_dir: str | Path | None) -> Path:
    """The model directory `model` is (or was exported from): given, or beside the file."""
    if model_dir is not None:
        return Path(model_dir)
    candidates = [model] if model.is_dir() else [model.parent, model.parent.parent]
    found = next((c for c in candidates if (c / "config.json").is_file()), None)
    if found is None:
        raise InputError(f"{model}: no model directory beside it; name the one it was made from with --model-dir")
    return found


def _test_split(model_dir: Path, data: str | Path | None = None):
    """The held-out test windows of a model directory, rebuilt from its training data (checked by the caller:
    there and unchanged, or `data` in its place)."""
    from ..data.prepare import load_splits
    from ..models.modeldir import load_config

    test = load_splits(load_config(model_dir), data).test
    if not len(test):
        raise InputError(f"{model_dir}: training held out no test split (cross-validated or tuned); give DATA")
    return test


def check_writable(path: Path) -> None:
    """Refuse, before any work, an output path that cannot be written."""
    parent = path.parent
    if path.is_dir() or (parent.exists() and not parent.is_dir()) or not parent.exists():
        raise InputError(f"{path}: cannot write here (the folder is missing, or the path is a folder)")


def write_predictions(path: Path, meta: dict, w, outputs: np.ndarray) -> None:
    """Per-window CSV: recording, start, truth, prediction and the model's scores (written whole, then renamed)."""
    import csv
    import os

    from .metrics import outputs_in_units

    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    starts = w.starts if w.starts is not None else np.full(len(w.X), -1)
    with open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        if meta["task"] == "classify":
            labels = meta["labels"]
            out.writerow(["window", "recording", "start", "truth", "prediction", *(f"score_{c}" for c in labels)])
            pred = np.argmax(outputs, axis=-1)
            for i, (g, s, t, pr, sc) in enumerate(zip(w.groups, starts, w.y, pred, outputs)):
                out.writerow([i, g, int(s), labels[int(t)], labels[int(pr)], *(f"{v:.6g}" for v in sc)])
        else:
            units = outputs_in_units(meta, outputs)
            k = units.shape[1]
            out.writerow(
                [
                    "window",
                    "recording",
                    "start",
                    *(f"truth_{j}" for j in range(k)),
                    *(f"prediction_{j}" for j in range(k)),
                ]
            )
            for i, (g, s, t, pr) in enumerate(zip(w.groups, starts, np.reshape(w.y, (len(w.y), -1)), units)):
                out.writerow([i, g, int(s), *(f"{v:.6g}" for v in t), *(f"{v:.6g}" for v in pr)])
    os.replace(tmp, path)
