"""Run any model form (Keras model dir, .tflite, .onnx; step or sequence) over windows, using its own metadata.

Step models are stepped from zero state per window (BiLSTM: x[t] and x[T-1-t]); sequence .tflite models get
reset_all_variables() before each window, because the fused LSTM keeps its state across invoke() (DESIGN.md).
Quantized boundary tensors are quantized/dequantized with the scale and zero point from the metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import InputError, ModelDirError
from .metadata import ModelFileError, read_metadata


def _quant(a: np.ndarray, t: dict) -> np.ndarray:
    if t["scale"] is None:
        return a.astype(t["dtype"])
    info = np.iinfo(t["dtype"])
    q = np.round(a / np.float32(t["scale"]) + t["zero_point"])  # the float32 scale (metadata spells it short)
    return np.clip(q, info.min, info.max).astype(t["dtype"])


def _dequant(a: np.ndarray, t: dict) -> np.ndarray:
    if t["scale"] is None:
        return a.astype(np.float32)
    return ((a.astype(np.float32) - t["zero_point"]) * np.float32(t["scale"])).astype(np.float32)


class Predictor:
    """`meta` (the metadata dict) and `predict(windows_normalized [N, T, F]) -> outputs [N, n_outputs]`."""

    meta: dict
    path: Path

    def normalize(self, X: np.ndarray) -> np.ndarray:
        n = self.meta["normalization"]
        X = np.asarray(X, np.float32)
        if X.shape[-1] != len(n["mean"]):
            raise InputError(f"data has {X.shape[-1]} features; {self.path} expects {len(n['mean'])}")
        return ((X - np.asarray(n["mean"], np.float32)) / np.asarray(n["std"], np.float32)).astype(np.float32)

    def predict(self, X: np.ndarray, progress: Callable[[str], None] | None = None) -> np.ndarray:
        raise NotImplementedError


class KerasPredictor(Predictor):
    def __init__(self, path: Path) -> None:
        from .metadata import build_metadata, tensor_entry
        from .modeldir import load_keras

        self.path = path
        self.cfg, self.model = load_keras(path)
        c = self.cfg
        self.meta = build_metadata(
            c, "sequence", "float", [tensor_entry("x", "window", [1, c.window, c.n_features])],
            [tensor_entry("y", "y", [1, c.n_outputs])], format="keras",
        )

    def predict(self, X, progress=None):
        return self.model.predict(np.asarray(X, np.float32), verbose=0, batch_size=256)


class _Runner:
    """One backend's call: feed dict of arrays by name -> dict of arrays by name."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.fmt = fmt
        if fmt == "tflite":
            from ai_edge_litert.interpreter import Interpreter

            try:
                self.it = Interpreter(model_path=str(path))
                self.it.allocate_tensors()
            except (ValueError, RuntimeError) as ex:
                raise ModelFileError(f"{path}: cannot load the TFLite model ({ex})") from None
            self.runner = self.it.get_signature_runner("serving_default")
        else:
            import onnxruntime as ort

            try:
                self.sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            except Exception as ex:
                raise ModelFileError(f"{path}: cannot load the ONNX model ({ex})") from None
            self.outs = [o.name for o in self.sess.get_outputs()]

    def reset(self) -> None:
        if self.fmt == "tflite":
            self.it.reset_all_variables()

    def __call__(self, feed: dict) -> dict:
        if self.fmt == "tflite":
            return self.runner(**feed)
        return dict(zip(self.outs, self.sess.run(self.outs, feed)))


class FilePredictor(Predictor):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta = read_metadata(path)
        self.run = _Runner(path, "tflite" if path.suffix.lower() == ".tflite" else "onnx")

    def predict(self, X, progress=None):
        X = np.asarray(X, np.float32)
        m = self.meta
        ins = {t["name"]: t for t in m["inputs"]}
        outs = {t["name"]: t for t in m["outputs"]}
        y_t = next(t for t in m["outputs"] if t["role"] == "y")
        ys = []
        step_every = max(1, len(X) // 10)
        for i, w in enumerate(X):
            if progress and i % step_every == 0:
                progress(f"evaluating {i}/{len(X)}")
            if m["kind"] == "sequence":
                self.run.reset()
                x_t = next(t for t in m["inputs"] if t["role"] == "window")
                res = self.run({x_t["name"]: _quant(w[None], x_t)})
                ys.append(_dequant(res[y_t["name"]], y_t)[0])
                continue
            states = [t for t in m["outputs"] if t["role"] == "state"]
            st = {t["state_input"]: _quant(np.zeros(ins[t["state_input"]]["shape"], np.float32),
                                           ins[t["state_input"]]) for t in states}
            T = len(w)
            for t in range(T):
                feed = {"x": _quant(w[t : t + 1], ins["x"]), **st}
                if "x_reverse" in ins:
                    feed["x_reverse"] = _quant(w[T - 1 - t : T - t], ins["x_reverse"])
                res = self.run(feed)
                # requantize: a state output's scale/zero point differ from its input's (DESIGN.md)
                st = {s["state_input"]: _quant(_dequant(res[s["name"]], outs[s["name"]]), ins[s["state_input"]])
                      for s in states}
            ys.append(_dequant(res[y_t["name"]], y_t)[0])
        return np.stack(ys)


def open_model(path: str | Path) -> Predictor:
    path = Path(path)
    if path.is_dir():
        return KerasPredictor(path)
    if not path.exists():
        raise ModelDirError(f"{path}: no such model (a model directory, .tflite or .onnx)")
    if path.suffix.lower() in (".tflite", ".onnx"):
        return FilePredictor(path)
    raise ModelFileError(f"{path}: not a model edgelstm knows (a model directory, .tflite or .onnx)")


def evaluate_data(model: str | Path, data: str | Path, label_col: str | None = None, group_col: str | None = None,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Metrics of any model form on every window of a dataset (window/stride/channels from the model; label and
    recording columns as given, else as the model's training data had them, else `label` and `recording`)."""
    from .data import ColumnSpec, load, make_windows
    from .report import scores

    p = open_model(model)
    m = p.meta
    trained = m.get("columns") or {}
    label_col = label_col or trained.get("label_col") or ColumnSpec.label_col
    group_col = group_col or trained.get("group_col") or ColumnSpec.group_col
    spec = ColumnSpec(task=m["task"], label_col=label_col, group_col=group_col,
                      target_cols=tuple(m["targets"]) if m["task"] != "classify" else (),
                      channels=tuple(m["channels"]))
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
    out = p.predict(p.normalize(w.X), progress)
    return scores(m, y, out)
