"""export/prune.py: the int8 LSTM step model's cell-state clip goes when it cannot change an output."""

from __future__ import annotations

import numpy as np
import pytest
from test_compact import step_outputs


def _raw_int8(step, samples: dict, tmp_path) -> bytes:
    """The converter's int8 step model (int8 I/O) before any edit of ours."""
    from edgelstm._deps import tensorflow
    from edgelstm.export.tflite import _saved_model, configure
    from edgelstm.export.worker import representative

    tf = tensorflow()
    npz = tmp_path / "samples.npz"
    np.savez(npz, **samples)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(_saved_model(step.tf_function(batch=1), tmp_path / "sm")))
    configure(conv, "int8", representative(str(npz), step.input_names), io="int8")
    return conv.convert()


def _ops(data: bytes) -> list[str]:
    from tensorflow.lite.python import schema_py_generated as schema_fb
    from tensorflow.lite.tools import flatbuffer_utils

    names = {v: k for k, v in vars(schema_fb.BuiltinOperator).items() if not k.startswith("_")}
    m = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    return [
        names[max(m.operatorCodes[o.opcodeIndex].builtinCode, m.operatorCodes[o.opcodeIndex].deprecatedBuiltinCode)]
        for o in m.subgraphs[0].operators
    ]


@pytest.mark.parametrize("stretch", [1.0, 8.0])
def test_clip_is_dropped_and_outputs_stay_bit_identical(tiny_model, tmp_path, stretch):
    """stretch 1: the calibrated cell state stays within ±4, both bounds quantize to the int8 limits; stretch 8:
    the cell state reaches ±8, the clip's range ends at ±4 and a bound can sit one step inside the limit, where
    the TANH after it is saturated. Either way: no MINIMUM/MAXIMUM left, the same outputs for every feed (random
    int8 over the whole range, so the clipped values are hit)."""
    from edgelstm.export.calibrate import step_samples
    from edgelstm.export.prune import drop_identity_clips
    from edgelstm.models.step import build_step_model, scale_cell_state

    cfg, model = tiny_model(arch="lstm", layers=1, units=8)
    step = build_step_model(cfg, model)
    X = np.random.default_rng(0).normal(0, 1, (8, cfg.window, cfg.n_features)).astype(np.float32)
    samples = step_samples(step, X, 400)
    samples.update(scale_cell_state(step, samples))
    step.cells[0].c_scale = step.cells[0].c_scale * stretch
    raw = _raw_int8(step, samples, tmp_path)
    assert {"MINIMUM", "MAXIMUM"} <= set(_ops(raw))
    small = drop_identity_clips(raw)
    assert not {"MINIMUM", "MAXIMUM"} & set(_ops(small))
    print(f"stretch {stretch}: {len(raw)} -> {len(small)} bytes")
    assert len(small) < len(raw) - 200
    for ya, yb in zip(step_outputs(raw, 200), step_outputs(small, 200)):
        assert ya.keys() == yb.keys()
        for k in ya:
            assert np.array_equal(ya[k], yb[k]), k
    assert drop_identity_clips(small) == small
