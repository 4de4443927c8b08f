"""Small real models for the runtime tests: a tf_keras sequence model and its float TFLite step model.

The step model is built here from the sequence model's weights (a cell per layer, explicit state), converted by
the real TFLite converter, with the edgelstm metadata in a sidecar JSON (the runner reads either).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

F, U, C, T = 3, 8, 3, 12
MEAN = [1.0, -2.0, 0.5]
STD = [2.0, 0.5, 1.5]
LABELS = ["a", "b", "c"]


def build(out: Path, arch: str = "lstm", seed: int = 0):
    """(sequence keras model, path of the step .tflite, metadata) for a 1-layer `arch` classifier."""
    from edgelstm._deps import keras, tensorflow

    tf = tensorflow()
    k = keras()
    k.utils.set_random_seed(seed)
    rnn = {"lstm": k.layers.LSTM, "gru": k.layers.GRU}[arch]
    seq = k.Sequential([k.Input((T, F), batch_size=1), rnn(U, name="rnn0"), k.layers.Dense(C, name="logits"),
                        k.layers.Activation("softmax", name="probs")])
    names = ["h0", "c0"] if arch == "lstm" else ["h0"]
    x = k.Input((F,), batch_size=1, name="x")
    states = [k.Input((U,), batch_size=1, name=n) for n in names]
    cell = (k.layers.LSTMCell if arch == "lstm" else k.layers.GRUCell)(U)
    h, new = cell(x, states if arch == "lstm" else states[0])
    new = new if isinstance(new, (list, tuple)) else [new]
    dense = k.layers.Dense(C)
    y = k.layers.Activation("softmax", name="y")(dense(h))
    outs = [k.layers.Activation("linear", name=f"{n}_out")(s) for n, s in zip(names, new)]
    step = k.Model([x, *states], [y, *outs])
    cell.set_weights(seq.get_layer("rnn0").get_weights())
    dense.set_weights(seq.get_layer("logits").get_weights())
    path = Path(out) / f"{arch}_step.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(step).convert())
    meta = metadata(arch, names)
    Path(str(path) + ".json").write_text(json.dumps(meta))
    return seq, path, meta


def metadata(arch: str, names: list[str]) -> dict:
    def t(name, role, shape, **kw):
        return {"name": name, "role": role, "shape": shape, "dtype": "float32", "scale": 0.0, "zero_point": 0, **kw}

    return {
        "schema": 1, "edgelstm_version": "test", "kind": "step", "arch": arch, "task": "classify", "layers": 1,
        "units": U, "merge": "concat", "labels": LABELS, "channels": ["ax", "ay", "az"], "targets": [],
        "horizon": 1, "normalization": {"mean": MEAN, "std": STD}, "target_normalization": None,
        "window": T, "stride": T // 2, "sample_rate": 50.0, "quantization": "float",
        "inputs": [t("x", "x", [1, F])] + [t(n, "state", [1, U]) for n in names],
        "outputs": [t("y", "y", [1, C])] + [t(f"{n}_out", "state", [1, U], state_input=n) for n in names],
    }


def recording(n: int = 200, seed: int = 1) -> np.ndarray:
    """Raw (un-normalized) samples [n, F]: a noisy walk around the metadata's mean."""
    rng = np.random.default_rng(seed)
    return (np.asarray(MEAN) + np.asarray(STD) * np.cumsum(rng.normal(0, 0.3, (n, F)), axis=0) / 3).astype(
        np.float32)


def keras_windows(seq, raw: np.ndarray, starts) -> np.ndarray:
    """The offline model on each window of the raw recording (normalized as the runner does)."""
    x = (raw - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.stack([seq(x[s:s + T][None], training=False).numpy()[0] for s in starts])
