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

    def predict(self, X, progress=None):
        from ..data.prepare import model_inputs

        return self.model.predict(model_inputs(self.cfg, self.check(X)), verbose=0, batch_size=256)


class FilePredictor(Predictor):
    """A .tflite or .onnx, run by the device runner."""

    CHUNK = 64  # windows between progress lines

    def __init__(self, path: Path) -> None:
        from ..runtime import Runner

        self.path = path
        self.runner = Runner()
        self.meta = self.runner.open(path).meta

    def predict(self, X, progress=None):
        X = self.check(X)
        out = []
        for i in range(0, len(X), self.CHUNK):
            if progress:
                progress(f"evaluating {i}/{len(X)}")
            out.append(self.runner.run_windows(X[i : i + self.CHUNK]))
        return np.concatenate(out) if out else np.zeros((0, self.runner.info.n_outputs), np.float32)


def open_model(path: str | Path) -> Predictor:
    path = Path(path)
    if path.is_dir():
        return KerasPredictor(path)
    if not path.exists():
        raise ModelDirError(f"{path}: no such model (a model directory, .tflite or .onnx)")
    if path.suffix.lower() in (".tflite", ".onnx"):
        return FilePredictor(path)
    raise ModelFileError(f"{path}: not a model edgelstm knows (a model directory, .tflite or .onnx)")


def evaluate_data(
    model: str | Path,
    data: str | Path,
    label_col: str | None = None,
    group_col: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Metrics of any model form on every window of a dataset (window/stride/channels from the model; label and
    recording columns as given, else as the model's training data had them, else `label` and `recording`)."""
    from ..data.dataset import ColumnSpec, load
    from ..data.windows import make_windows
    from .metrics import scores

    p = open_model(model)
    m = p.meta
    trained = m.get("columns") or {}
    label_col = label_col or trained.get("label_col") or ColumnSpec.label_col
    group_col = group_col or trained.get("group_col") or ColumnSpec.group_col
    spec = ColumnSpec(
        task=m["task"],
        label_col=label_col,
        group_col=group_col,
        target_cols=tuple(m["targets"]) if m["task"] != "classify" else (),
        channels=tuple(m["channels"]),
    )
    ds = load(data, spec)
    if ds.n_features != m["n_features"]:
        raise InputError(f"{data}: has {ds.n_features} channels; {model} expects {m['n_features']}")
    if m["task"] == "classify" and ds.labels and m["labels"] and ds.labels != m["labels"]:
        unknown = sorted(set(ds.labels) - set(m["labels"]))
        if unknown:
            raise InputError(f"{data}: labels {', '.join(unknown)} are not classes of {model}")
    if ds.windows is not None:
        w = ds.windows
    else:
        tidx = [ds.channels.index(t) for t in m["targets"]] if m["task"] == "forecast" else None
        w = make_windows(ds.recordings, m["window"], m["stride"], m["task"], m["horizon"], tidx, ds.source)
    y = w.y
    if m["task"] == "classify" and ds.labels != m["labels"]:
        remap = np.array([m["labels"].index(lab) for lab in ds.labels])
        y = remap[y]
    out = p.predict(w.X, progress)
    return scores(m, y, out)
