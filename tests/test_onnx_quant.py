"""ONNX Runtime quantization of the trained 1x32 LSTM: static QDQ step model and dynamic sequence model."""

from __future__ import annotations

import json

from conftest import invoke


def _report(out) -> tuple[dict, dict]:
    rep = json.loads((out / "report.json").read_text())
    (m,) = rep["models"]
    return rep, m


def test_onnx_qdq_int8_lstm_step_carries_the_scaled_cell_state(lstm_model, tmp_path):
    """Like the int8 .tflite, the QDQ step model carries c / k per unit (k from calibration): the graph has the
    clip of the rescaled cell state, and the accuracy drop stays within a point (plain c lost 0.6-2.6 points over
    4 calibration seeds; docs/metadata.md)."""
    r = invoke("quantize", lstm_model, "--mode", "int8", "--format", "onnx", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    rep, m = _report(tmp_path)
    v = m["vs_reference"]
    print(
        f"lstm32 onnx qdq int8 step: accuracy {m['metrics']['accuracy']:.4f} "
        f"(float {rep['reference']['metrics']['accuracy']:.4f}), agreement {v['argmax_agreement']:.4f}, "
        f"max|d| {v['max_abs_delta']:.3f}"
    )
    assert m["file"] == "step.int8.onnx" and rep["n_windows"] > 100
    assert m["accuracy_drop"] <= 0.01
    assert v["argmax_agreement"] >= 0.99  # 100 % on the demo model (trained with augmentation)
    ops = json.loads(invoke("inspect", tmp_path / "step.int8.onnx", "--json").stdout)["ops"]
    assert ops["QuantizeLinear"] > 0 and ("Clip" in ops or {"Min", "Max"} <= set(ops)), ops


def test_onnx_dynamic_sequence_lstm(lstm_model, tmp_path):
    """`--mode dynamic --format onnx --kind sequence`: ONNX Runtime turns the LSTM into DynamicQuantizeLSTM (int8
    weights, float activations) and the Dense into MatMulInteger. Tolerances on the softmax outputs over the
    held-out windows: argmax agreement ≥ 99 %, RMSE ≤ 0.03, accuracy within a point of float."""
    r = invoke("quantize", lstm_model, "--mode", "dynamic", "--format", "onnx", "--kind", "sequence", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    path = tmp_path / "sequence.dynamic.onnx"
    info = json.loads(invoke("inspect", path, "--json").stdout)
    assert info["ops"].get("DynamicQuantizeLSTM") == 1 and "LSTM" not in info["ops"], info["ops"]
    assert info["metadata"]["quantization"] == "dynamic" and info["metadata"]["kind"] == "sequence"
    rep, m = _report(tmp_path)
    v = m["vs_reference"]
    print(
        f"lstm32 onnx dynamic sequence: {path.stat().st_size} B, ops {info['ops']}, agreement "
        f"{v['argmax_agreement']:.4f}, rmse {v['rmse']:.4f}, mae {v['mae']:.4f}, max|d| {v['max_abs_delta']:.3f}"
    )
    assert v["argmax_agreement"] >= 0.99
    assert v["rmse"] <= 0.03
    assert abs(m["accuracy_drop"]) <= 0.01
