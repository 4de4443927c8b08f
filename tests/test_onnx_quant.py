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
    # size: under 70 % of what the float weights alone take (4 B per parameter). ONNX Runtime's own QDQ file was
    # 24,550 B here, above the float step.onnx's 24,058 B; compacted it is 12,864 B (onnxquant.compact)
    from edgelstm.models.modeldir import load_keras

    params = load_keras(lstm_model)[1].count_params()
    size = (tmp_path / "step.int8.onnx").stat().st_size
    print(f"lstm32 step.int8.onnx: {size} B; float weights {4 * params} B")
    assert size < 0.7 * 4 * params, (size, params)


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


def _qdq_pair(tmp_path, units: int = 8, n_in: int = 6):
    """A float step-like graph (x, h0 → tanh(x·W + h0·U + b) → h0_out, y = h·V) and ONNX Runtime's static QDQ
    quantization of it, as files: ONNX Runtime's own output, before edgelstm's compaction."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(0)
    w = {
        "W": rng.normal(size=(n_in, units)),
        "U": rng.normal(size=(units, units)),
        "b": rng.normal(size=(units,)),
        "V": rng.normal(size=(units, 4)),
    }
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in w.items()]
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("MatMul", ["h0", "U"], ["hu"]),
        helper.make_node("Add", ["xw", "hu"], ["s"]),
        helper.make_node("Add", ["s", "b"], ["sb"]),
        helper.make_node("Tanh", ["sb"], ["h0_out"]),
        helper.make_node("MatMul", ["h0_out", "V"], ["y"]),
    ]
    io = lambda name, n: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, n])  # noqa: E731
    graph = helper.make_graph(nodes, "step", [io("x", n_in), io("h0", units)], [io("y", 4), io("h0_out", units)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    src, dst = tmp_path / "step.onnx", tmp_path / "ort.onnx"
    onnx.save(model, src)
    feeds = [
        {"x": rng.normal(size=(1, n_in)).astype(np.float32), "h0": rng.uniform(-1, 1, (1, units)).astype(np.float32)}
        for _ in range(32)
    ]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    quantize_static(
        str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )  # fmt: skip
    return src, dst, feeds


def test_compact_qdq_graph_is_smaller_and_computes_the_same(tmp_path):
    """ONNX Runtime's QDQ output names each Q/DQ node and tensor after its source and stores a scale and zero point
    per tensor; `compact` stores identical initializers once and gives internal names short ids. Same outputs bit
    for bit, the graph's input/output names kept, at least 30 % fewer bytes (measured: 24,550 → 12,864 B on the
    demo's 32-unit LSTM step model, whose float file is 24,058 B)."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from edgelstm.export.onnxquant import compact

    src, dst, feeds = _qdq_pair(tmp_path)
    before = dst.read_bytes()
    after = compact(onnx.load_from_string(before))
    onnx.checker.check_model(after)
    blob = after.SerializeToString()
    print(f"8-unit QDQ step graph: float {src.stat().st_size} B, ONNX Runtime {len(before)} B, compact {len(blob)} B")
    assert len(blob) < 0.7 * len(before)
    assert [i.name for i in after.graph.input] == ["x", "h0"] and [o.name for o in after.graph.output] == [
        "y",
        "h0_out",
    ]
    a = ort.InferenceSession(before, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    for feed in feeds[:8]:
        for u, v in zip(a.run(None, feed), b.run(None, feed), strict=True):
            np.testing.assert_array_equal(u, v)


def test_quantize_says_when_an_int8_onnx_file_is_not_smaller(tmp_path):
    """The size note covers ONNX: both sizes, and why (QDQ's per-tensor node pair and scale/zero point)."""
    from edgelstm.export.quantize import size_note

    (tmp_path / "step.onnx").write_bytes(b"\0" * 2000)
    (tmp_path / "step.int8.onnx").write_bytes(b"\0" * 2100)
    assert size_note(tmp_path / "step.int8.onnx", "int8") == (
        "note: step.int8.onnx (2,100 B) is not smaller than the float step.onnx (2,000 B): ONNX's QDQ form adds a "
        "QuantizeLinear/DequantizeLinear pair and a scale and zero point per quantized tensor (~70 B), more than int8 "
        "saves on small matmuls (3 B per weight). Keep it for an int8-only target such as the Edge TPU; elsewhere "
        "the float file is smaller"
    )
    (tmp_path / "step.int8.onnx").write_bytes(b"\0" * 1000)
    assert size_note(tmp_path / "step.int8.onnx", "int8") is None
