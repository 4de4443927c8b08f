"""int8 streaming fidelity on trained models: the runner, fed raw samples, against the offline Keras model on the
same held-out windows (the LSTM's case, with int8 I/O, is in test_runtime_quant.py)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import heldout_outputs, invoke, per_window

from edgelstm.runtime import Runner


def quantized(model_dir, out, *args) -> object:
    r = invoke("quantize", model_dir, "--mode", "int8", "--kind", "step", "--no-report", "-o", out, *args)
    assert r.exit_code == 0, r.output
    return out / "step.int8.tflite"


@pytest.mark.parametrize("io", ["float", "int8"])
def test_gru_int8_stream_agrees_with_keras(gru_model, tmp_path, io):
    """Stateful streaming, fresh state per window as in training: one output per sample, the last one compared."""
    cfg, X, ref = heldout_outputs(gru_model)
    got = per_window(quantized(gru_model, tmp_path, "--io", io), X)
    agree = float(np.mean(got.argmax(1) == ref.argmax(1)))
    print(f"gru32 int8 stream ({io} I/O): agreement {agree:.4f} on {len(X)} windows, max |d| {np.abs(got - ref).max()}")
    assert agree >= 0.99


def test_bilstm_int8_windowed_run_agrees_with_keras(bilstm_model, tmp_path):
    """The windowed runner (window = the training window, hop = window: one output per held-out window) on the
    per-direction int8 step model: each window starts from zero state in both directions."""
    cfg, X, ref = heldout_outputs(bilstm_model)
    runner = Runner(window=cfg.window, hop=cfg.window, rate=cfg.sample_rate)
    info = runner.open(quantized(bilstm_model, tmp_path))
    assert info.kind == "step"
    res = list(runner.stream(np.concatenate(X)))
    assert len(res) == len(X) and res[0].lookahead == cfg.window - 1 - cfg.window // 2
    got = np.array([r.values for r in res])
    agree = float(np.mean(got.argmax(1) == ref.argmax(1)))
    print(f"bilstm16 int8 windowed: agreement {agree:.4f} on {len(X)} windows, max |d| {np.abs(got - ref).max()}")
    assert agree >= 0.99
