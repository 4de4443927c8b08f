"""The last step of every .tflite export (export/compact.py): smaller file, same model apart from tensor names."""

from __future__ import annotations

import numpy as np
import pytest


def _model(data: bytes):
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.convert_bytearray_to_object(bytearray(data))


def _arr(v):
    return None if v is None else np.asarray(v).tolist()


def _quant(q):
    if q is None or q.scale is None:
        return None
    return (_arr(q.scale), _arr(q.zeroPoint), q.quantizedDimension, _arr(q.min), _arr(q.max))


def _options(o):
    return None if o is None else (type(o).__name__, sorted((k, repr(v)) for k, v in vars(o).items()))


def assert_same_model_but_names(raw: bytes, small: bytes) -> None:
    """Every tensor (shape, dtype, data bytes, quantization), op, signature and metadata buffer is the same;
    only the I/O tensors keep their names."""
    from edgelstm.modelfile.read import tflite_metadata_entries

    a, b = _model(raw), _model(small)
    assert len(a.subgraphs) == len(b.subgraphs)
    codes_a = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in a.operatorCodes]
    codes_b = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in b.operatorCodes]
    for sa, sb in zip(a.subgraphs, b.subgraphs):
        assert _arr(sa.inputs) == _arr(sb.inputs) and _arr(sa.outputs) == _arr(sb.outputs)
        io = set(_arr(sa.inputs)) | set(_arr(sa.outputs))
        assert len(sa.tensors) == len(sb.tensors)
        for i, (ta, tb) in enumerate(zip(sa.tensors, sb.tensors)):
            assert _arr(ta.shape) == _arr(tb.shape) and ta.type == tb.type and ta.isVariable == tb.isVariable
            assert _quant(ta.quantization) == _quant(tb.quantization), i
            da, db = a.buffers[ta.buffer].data, b.buffers[tb.buffer].data
            assert (bytes(da) if da is not None else b"") == (bytes(db) if db is not None else b""), i
            assert tb.name == (ta.name if i in io else None), i
        assert len(sa.operators) == len(sb.operators)
        for oa, ob in zip(sa.operators, sb.operators):
            assert codes_a[oa.opcodeIndex] == codes_b[ob.opcodeIndex]
            assert _arr(oa.inputs) == _arr(ob.inputs) and _arr(oa.outputs) == _arr(ob.outputs)
            assert _options(oa.builtinOptions) == _options(ob.builtinOptions)
    sig = [
        (s.signatureKey, [(t.name, t.tensorIndex) for t in s.inputs], [(t.name, t.tensorIndex) for t in s.outputs])
        for s in a.signatureDefs
    ]
    assert sig == [
        (s.signatureKey, [(t.name, t.tensorIndex) for t in s.inputs], [(t.name, t.tensorIndex) for t in s.outputs])
        for s in b.signatureDefs
    ]
    assert tflite_metadata_entries(raw) == tflite_metadata_entries(small)


def step_outputs(data: bytes, n: int = 6) -> list[dict]:
    """Signature outputs of ai_edge_litert's interpreter on n random feeds (quantized inputs fed as integers)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=data).get_signature_runner("serving_default")
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        feed = {}
        for name, d in runner.get_input_details().items():
            if np.issubdtype(d["dtype"], np.integer):
                info = np.iinfo(d["dtype"])
                feed[name] = rng.integers(info.min, info.max, d["shape"]).astype(d["dtype"])
            else:
                feed[name] = rng.normal(0, 1, d["shape"]).astype(d["dtype"])
        out.append(runner(**feed))
    return out


@pytest.fixture(scope="module")
def lstm8_step(tiny_model, tmp_path_factory):
    """The uncompacted .tflite bytes of an 8-unit LSTM step model: float, int8 (float I/O), int8 I/O, int16x8."""
    from edgelstm.export.calibrate import step_samples
    from edgelstm.export.tflite import step_tflite
    from edgelstm.export.worker import representative
    from edgelstm.models.step import build_step_model

    cfg, model = tiny_model(arch="lstm", layers=1, units=8)
    step = build_step_model(cfg, model)
    npz = tmp_path_factory.mktemp("compact") / "samples.npz"
    X = np.random.default_rng(0).normal(0, 1, (8, cfg.window, cfg.n_features)).astype(np.float32)
    np.savez(npz, **step_samples(step, X, 400))
    rep = representative(str(npz), step.input_names)
    return {
        "float": step_tflite(step),
        "int8": step_tflite(step, "int8", rep, io="float"),
        "int8-io": step_tflite(step, "int8", rep, io="int8"),
        "int16x8": step_tflite(step, "int16x8", rep),
    }


@pytest.mark.parametrize("which", ["float", "int8", "int8-io", "int16x8"])
def test_compacted_step_model_is_the_same_model_and_smaller(lstm8_step, which):
    from edgelstm.export.compact import compact_tflite

    raw = lstm8_step[which]
    small = compact_tflite(raw)
    print(f"lstm8 step {which}: {len(raw)} -> {len(small)} bytes")
    assert len(small) < 0.85 * len(raw)
    assert_same_model_but_names(raw, small)
    for ya, yb in zip(step_outputs(raw), step_outputs(small)):
        assert ya.keys() == yb.keys()
        for k in ya:
            assert ya[k].dtype == yb[k].dtype and np.array_equal(ya[k], yb[k]), k
    assert compact_tflite(small) == small  # a second pass finds nothing more


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_compacted_sequence_model_runs_identically(arch, tiny_model):
    """The fused LSTM (variable state tensors) and the GRU (a WHILE loop over subgraphs) survive compaction:
    several windows in a row on one interpreter give bit-identical outputs."""
    from conftest import litert_sequence_windows

    from edgelstm.export.compact import compact_tflite
    from edgelstm.export.tflite import sequence_tflite

    cfg, model = tiny_model(arch=arch, layers=1)
    raw = sequence_tflite(cfg, model)
    small = compact_tflite(raw)
    print(f"{arch}8 sequence: {len(raw)} -> {len(small)} bytes")
    assert len(small) < len(raw)
    assert_same_model_but_names(raw, small)
    X = np.random.default_rng(1).normal(0, 1, (4, cfg.window, cfg.n_features)).astype(np.float32)
    for reset in (True, False):
        assert np.array_equal(litert_sequence_windows(raw, X, reset), litert_sequence_windows(small, X, reset))


def test_check_names_unnamed_tensors_by_index(tiny_model_dir, tmp_path):
    """Intermediate tensors lose their names: `check` names them by index next to the op that makes them."""
    import re

    from conftest import invoke

    assert invoke("convert", tiny_model_dir(arch="gru", layers=1), "--kind", "step", "-o", tmp_path).exit_code == 0
    r = invoke("check", tmp_path / "step.tflite", "--target", "coral-edgetpu")
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if "needs int8 everywhere" in ln]
    assert lines and all(
        re.fullmatch(
            r"step\.tflite: tensor (#\d+|\S+) \(output of [A-Z_]+\) is float32; "
            r"coral-edgetpu needs int8 everywhere",
            ln,
        )
        for ln in lines
    ), lines
    assert any("tensor #" in ln for ln in lines)
