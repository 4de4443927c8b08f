"""One quantization per int8 state pair (export/statequant.py): generic over pairs, refuses fixed-scale ops."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import dq8, q8

from edgelstm.export.statequant import common_quantization, share_state_quantization


def _range(q):
    return (-128 - q[1]) * q[0], (127 - q[1]) * q[0]


@pytest.mark.parametrize(
    "q_in, q_out", [((0.0078, 0), (0.0079, -3)), ((0.01, 20), (0.008, -40)), ((0.03, -128), (0.002, 10))]
)
def test_common_quantization_covers_both_ranges(q_in, q_out):
    q = common_quantization(q_in, q_out)
    lo, hi = _range(q)
    for other in (q_in, q_out):
        olo, ohi = _range(other)
        assert lo <= olo + 1e-9 and hi >= ohi - 1e-9, (q, other)
    assert -128 <= q[1] <= 127
    # no coarser than needed: the union of the two ranges over 255 steps, within one step of rounding the zero point
    width = max(_range(q_in)[1], _range(q_out)[1]) - min(_range(q_in)[0], _range(q_out)[0])
    assert q[0] <= width / 255 * (1 + 1 / 128), q


def test_common_quantization_keeps_the_covering_one():
    assert common_quantization((0.01, 0), (0.009, 1)) == (0.01, 0)
    assert common_quantization((0.009, 1), (0.01, 0)) == (0.01, 0)


@pytest.fixture(scope="module")
def two_state_model(tmp_path_factory):
    """A tiny int8 model (int8 I/O) with two state pairs: `a_out` made by ADD, `t_out` by TANH (a fixed scale)."""
    from edgelstm._deps import tensorflow

    tf = tensorflow()
    rng = np.random.default_rng(0)
    w = tf.constant(rng.normal(size=(4, 4)).astype(np.float32) * 0.5)
    u = tf.constant(rng.normal(size=(4, 4)).astype(np.float32) * 0.5)
    spec = [tf.TensorSpec([1, 4], tf.float32, name=n) for n in ("x", "a", "t")]

    @tf.function(input_signature=spec)
    def f(x, a, t):
        a_out = 0.5 * a + tf.matmul(x, w)
        t_out = tf.tanh(tf.matmul(x, u) + tf.matmul(t, u))
        return {"y": tf.matmul(a_out + t_out, w), "a_out": a_out, "t_out": t_out}

    def rep():
        for _ in range(100):
            yield {n: rng.normal(size=(1, 4)).astype(np.float32) for n in ("x", "a", "t")}

    mod = tf.Module()
    mod.f = f
    saved = str(tmp_path_factory.mktemp("twostate") / "saved")
    tf.saved_model.save(mod, saved, signatures={"serving_default": f.get_concrete_function()})
    conv = tf.lite.TFLiteConverter.from_saved_model(saved)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv.convert()


def _io(model_bytes):
    from ai_edge_litert.interpreter import Interpreter

    run = Interpreter(model_content=model_bytes).get_signature_runner()
    return run, run.get_input_details(), run.get_output_details()


def _loop(model_bytes, xs):
    """The hand-written requantizing loop on the public API; returns dequantized y per step."""
    run, ins, outs = _io(model_bytes)

    st = {n: q8(np.zeros((1, 4), np.float32), ins[n]) for n in ("a", "t")}
    ys = []
    for x in xs:
        r = run(x=q8(x[None], ins["x"]), **st)
        st = {n: q8(dq8(r[n + "_out"], outs[n + "_out"]), ins[n]) for n in ("a", "t")}
        ys.append(dq8(r["y"][0], outs["y"]))
    return np.array(ys)


def test_only_pairs_made_by_rescaling_ops_share_and_outputs_stay_close(two_state_model, monkeypatch):
    import edgelstm.export.statequant as sq

    _, ins0, outs0 = _io(two_state_model)
    q_in, q_out = ins0["a"]["quantization"], outs0["a_out"]["quantization"]
    assert sq.common_quantization(q_in, q_out)[0] > q_in[0] * (1 + sq.MAX_COARSENING)
    assert share_state_quantization(two_state_model, [("a", "a_out")]) == (two_state_model, [])  # too coarse
    monkeypatch.setattr(sq, "MAX_COARSENING", 1.0)
    edited, shared = share_state_quantization(two_state_model, [("a", "a_out"), ("t", "t_out"), ("zz", "zz_out")])
    assert shared == ["a_out"]
    _, ins, outs = _io(edited)
    assert ins["a"]["quantization"] == outs["a_out"]["quantization"]
    assert ins0["a"]["quantization"] != outs0["a_out"]["quantization"]  # the converter's own: they differ
    assert ins["t"]["quantization"] == ins0["t"]["quantization"]  # left alone: TANH has a fixed output scale
    assert outs["t_out"]["quantization"] == outs0["t_out"]["quantization"]
    xs = np.random.default_rng(1).normal(size=(200, 4)).astype(np.float32)
    old, new = _loop(two_state_model, xs), _loop(edited, xs)
    y_step = outs["y"]["quantization"][0]
    # the state is now rounded once (at the common scale) instead of twice; y moves by a few of its own steps
    assert np.abs(new - old).max() <= 4 * y_step, np.abs(new - old).max() / y_step


def test_keep_env_leaves_the_model_alone(two_state_model, monkeypatch):
    monkeypatch.setenv("EDGELSTM_KEEP_STATE_QUANT", "1")
    assert share_state_quantization(two_state_model, [("a", "a_out")]) == (two_state_model, [])
