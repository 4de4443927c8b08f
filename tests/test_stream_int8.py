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


def test_demo_stream_prints_each_activity_change_and_the_outputs_latency(gru_model, tmp_path):
    """issue 13.3: the demo's live part crosses a recording's activity changes (the hard sample data: several per
    subject) and prints each with the latency of the output's change; the changes are counted from the CSV here,
    the latencies checked against the per-sample outputs of a second Runner. (gru_model is trained on the
    fixture's easy data, so only consistency is asserted here, not accuracy: the demo's own figures are in
    README.)"""
    import re

    from edgelstm.data.sample import RATE_HZ, write_activity_csv
    from edgelstm.demo import stream_demo

    model = quantized(gru_model, tmp_path)
    data = write_activity_csv(tmp_path / "hard.csv", subjects=2)
    rows = [ln.split(",") for ln in data.read_text().splitlines()[1:] if ln.startswith("s01,")]
    truth = [r[-1] for r in rows]
    n_changes = sum(a != b for a, b in zip(truth, truth[1:]))
    lines: list[str] = []
    summary = stream_demo(model, data, lines.append, 0, "s01")
    assert lines[0].startswith(f"streaming s01, {len(rows)} samples ({len(rows) / RATE_HZ:.1f} s), through")
    assert sum(" s  true    " in ln for ln in lines) == n_changes == summary["changes"] >= 3
    runner = Runner()
    runner.open(model)
    pred = [r.label for r in runner.stream(np.array([r[2:8] for r in rows], np.float32))]
    assert summary["agreement"] == pytest.approx(np.mean(np.array(pred) == np.array(truth)))
    assert summary["output_changes"] == sum(a != b for a, b in zip(pred, pred[1:]))
    latency_lines = 0
    for ln in lines:
        m = re.search(r"(\d+\.\d\d) s  output  (\w+) \(.*\)  \+(\d+) samples \((\d+) ms\) after the true change", ln)
        if m:  # the output names the new class at that sample, N samples after the true change, and not before
            latency_lines += 1
            t = round(float(m[1]) * RATE_HZ)
            n = int(m[3])
            assert pred[t] == truth[t] == m[2] and truth[t - n] == m[2] != truth[t - n - 1]
            assert m[2] not in pred[t - n : t] and int(m[4]) == round(1000 * n / RATE_HZ)
    already = sum("(the output already says" in ln for ln in lines)
    assert latency_lines + already == summary["recognized"]
