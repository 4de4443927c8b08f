"""The edgelstm metadata inside .tflite and .onnx files: written at convert time, read without TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def step_file(tmp_path_factory, tiny_model):
    from edgelstm.export.tflite import step_tflite
    from edgelstm.models.step import build_step_model

    cfg, model = tiny_model(arch="lstm", layers=2)
    cfg.labels = ["a", "b", "c", "d"]
    path = tmp_path_factory.mktemp("meta") / "step.tflite"
    path.write_bytes(step_tflite(build_step_model(cfg, model)))
    return path


def test_tflite_metadata_is_read_without_tensorflow(step_file):
    code = (
        "import json, sys; from edgelstm.modelfile.read import read_metadata; m = read_metadata(sys.argv[1]); "
        "print(json.dumps([m['labels'], m['inputs'][1], 'tensorflow' in sys.modules, 'tf_keras' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(step_file)], capture_output=True, text=True, check=True)
    labels, h0, tf_loaded, keras_loaded = json.loads(out.stdout)
    assert labels == ["a", "b", "c", "d"]
    assert h0 == {"name": "h0", "role": "state", "shape": [1, 8], "dtype": "float32", "scale": None, "zero_point": None}
    assert not tf_loaded and not keras_loaded


def test_rewriting_metadata_replaces_the_old_entry(step_file):
    from edgelstm.modelfile.read import read_metadata, tflite_metadata_entries
    from edgelstm.modelfile.write import add_tflite_metadata

    meta = read_metadata(step_file)
    meta["labels"] = ["w", "x", "y", "z"]
    blob = add_tflite_metadata(step_file.read_bytes(), meta)
    entries = tflite_metadata_entries(blob)
    assert json.loads(entries["edgelstm"])["labels"] == ["w", "x", "y", "z"]
    assert list(entries).count("edgelstm") == 1


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[: len(b) // 3], "truncated"),
        (lambda b: b"\0" * 4 + b"XXXX" + b[8:], "not a TFLite model"),
        (lambda b: b"", "not a TFLite model"),
    ],
)
def test_damaged_tflite_gives_one_error_naming_the_file(step_file, tmp_path, damage, message):
    from edgelstm.errors import ModelFileError
    from edgelstm.modelfile.read import read_metadata

    bad = tmp_path / "bad.tflite"
    bad.write_bytes(damage(step_file.read_bytes()))
    with pytest.raises(ModelFileError) as ex:
        read_metadata(bad)
    assert str(bad) in str(ex.value) and message in str(ex.value) and "\n" not in str(ex.value)


@pytest.mark.slow  # runs the TF converter
def test_model_without_metadata_is_named(tmp_path):
    from edgelstm._deps import tensorflow
    from edgelstm.errors import ModelFileError
    from edgelstm.modelfile.read import read_metadata

    tf = tensorflow()
    fn = tf.function(lambda x: x * 2.0, input_signature=[tf.TensorSpec([1, 2], tf.float32)])
    blob = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn).convert()
    path = tmp_path / "plain.tflite"
    path.write_bytes(blob)
    with pytest.raises(ModelFileError, match=r"plain.tflite: has no 'edgelstm' metadata"):
        read_metadata(path)


def test_onnx_metadata_round_trip(step_file, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from edgelstm.errors import ModelFileError
    from edgelstm.modelfile.read import read_metadata
    from edgelstm.modelfile.write import add_onnx_metadata

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = read_metadata(step_file)
    path = tmp_path / "m.onnx"
    path.write_bytes(add_onnx_metadata(model.SerializeToString(), meta))
    assert read_metadata(path) == meta
    plain = tmp_path / "plain.onnx"
    onnx.save(model, str(plain))
    with pytest.raises(ModelFileError, match="plain.onnx: has no 'edgelstm' metadata"):
        read_metadata(plain)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ModelFileError, match="bad.onnx: cannot load the ONNX model"):
        read_metadata(bad)


def test_metadata_missing_a_key_is_named():
    from edgelstm.errors import ModelFileError
    from edgelstm.modelfile.read import validate

    with pytest.raises(ModelFileError, match="lacks window, stride"):
        validate(
            {
                "schema": 1,
                "edgelstm_version": "0",
                "kind": "step",
                "arch": "lstm",
                "task": "classify",
                "layers": 1,
                "units": 8,
                "merge": "concat",
                "labels": [],
                "channels": [],
                "targets": [],
                "horizon": 1,
                "normalization": {},
                "target_normalization": None,
                "sample_rate": None,
                "quantization": "float",
                "inputs": [],
                "outputs": [],
            },
            "m.tflite",
        )
