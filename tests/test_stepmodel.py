"""Stepping the external-state step model over windows reproduces the Keras sequence model (float ≤ 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest

CASES = {
    "lstm": dict(arch="lstm", layers=1),
    "gru": dict(arch="gru", layers=1),
    "peephole": dict(arch="lstm", layers=1, peephole=True),
    "lstm-2layer": dict(arch="lstm", layers=2),
    "gru-2layer-regress": dict(arch="gru", layers=2, task="regress", n_outputs=2),
    "bilstm-concat": dict(arch="bilstm", layers=1, merge="concat"),
    "bilstm-sum": dict(arch="bilstm", layers=1, merge="sum"),
    "conv-lstm": dict(arch="lstm", layers=1, conv=[[5, 6]]),
    "conv2-gru-pointwise": dict(arch="gru", layers=1, conv=[[3, 6], [1, 4]]),
    "conv-peephole-2layer": dict(arch="lstm", layers=2, peephole=True, conv=[[4, 5]]),
    "frame4-conv-gru": dict(arch="gru", layers=1, frame=4, conv=[[3, 6]]),
    "frame5-bilstm": dict(arch="bilstm", layers=1, frame=5),
    "pool-lstm": dict(arch="lstm", layers=1, pool="max"),
    "pool-gru-2layer-regress": dict(arch="gru", layers=2, task="regress", n_outputs=2, pool="max"),
    "pool-frame4-conv-peephole": dict(arch="lstm", layers=1, peephole=True, frame=4, conv=[[3, 6]], pool="max"),
    "maxconv-frame4-conv-gru": dict(arch="gru", layers=1, frame=4, conv=[[3, 6]], pool="maxconv"),
    "maxconv-conv2-lstm-2layer": dict(arch="lstm", layers=2, conv=[[3, 6], [2, 5]], pool="maxconv"),
}


def windows(cfg, n: int = 6, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, cfg.window, cfg.n_features)).astype(np.float32)


@pytest.mark.parametrize("case", list(CASES))
def test_step_model_reproduces_sequence_model_keras_and_tflite(case, tmp_path, tiny_model):
    from conftest import engine_windows

    from edgelstm.export.tflite import step_tflite
    from edgelstm.modelfile.read import read_metadata
    from edgelstm.models.step import build_step_model

    cfg, model = tiny_model(**CASES[case])
    X = windows(cfg)
    ref = model(X, training=False).numpy()
    step = build_step_model(cfg, model)
    d_keras = np.abs(step.run_windows(X) - ref).max()
    assert d_keras <= 1e-5, d_keras
    blob = step_tflite(step)
    d_tflite = np.abs(engine_windows(blob, X) - ref).max()
    assert d_tflite <= 1e-5, d_tflite
    path = tmp_path / "step.tflite"
    path.write_bytes(blob)
    meta = read_metadata(path)
    assert meta["kind"] == "step" and meta["arch"] == cfg.arch and meta["quantization"] == "float"
    names = [t["name"] for t in meta["inputs"]]
    assert names == step.input_names
    states = {t["name"]: t["state_input"] for t in meta["outputs"] if t["role"] == "state"}
    assert states == {f"{n}_out": n for n, _ in step.states}


def test_step_model_uses_plain_ops_only(tiny_model):
    from edgelstm.export.tflite import interpreter, step_tflite
    from edgelstm.models.step import build_step_model

    cfg, model = tiny_model(arch="gru", layers=2)
    ops = {o["op_name"] for o in interpreter(step_tflite(build_step_model(cfg, model)))._get_ops_details()}
    assert ops <= {"FULLY_CONNECTED", "ADD", "SUB", "MUL", "SPLIT", "LOGISTIC", "TANH", "SOFTMAX", "CONCATENATION"}, ops


def test_stacked_bilstm_has_no_step_model(tiny_model):
    from edgelstm.errors import InputError
    from edgelstm.models.step import build_step_model

    cfg, model = tiny_model(arch="bilstm", layers=2)
    with pytest.raises(InputError, match="stacked BiLSTM .* use the sequence model"):
        build_step_model(cfg, model)
