"""TFLite export of the step model and the sequence model, with the edgelstm metadata buffer inside.

These functions run in the conversion subprocess (export/isolated.py): the TF converter can segfault (docs/design.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..modelfile.write import add_tflite_metadata, build_metadata, tensor_entry
from ..models.step import StepModel
from .prune import drop_identity_clips
from .statequant import share_state_quantization


def interpreter(model_bytes: bytes | None = None, path: str | Path | None = None):
    """ai_edge_litert's Interpreter (the runtime devices use), not the deprecated tf.lite one."""
    from ai_edge_litert.interpreter import Interpreter

    if path is not None:
        return Interpreter(model_path=str(path))
    return Interpreter(model_content=bytes(model_bytes))


def _dtype_name(dt) -> str:
    return np.dtype(dt).name


def signature_io(model_bytes: bytes) -> tuple[dict, dict]:
    """(inputs, outputs) of the serving_default signature: name -> (shape, dtype, scale, zero_point)."""
    it = interpreter(model_bytes)
    runner = it.get_signature_runner("serving_default")

    def conv(d: dict) -> dict:
        out = {}
        for name, det in d.items():
            scale, zp = det["quantization"]
            q = scale != 0.0
            out[name] = (list(det["shape"]), _dtype_name(det["dtype"]), scale if q else None, zp if q else None)
        return out

    return conv(runner.get_input_details()), conv(runner.get_output_details())


def step_io_entries(step: StepModel, model_bytes: bytes, shared: list[str] = ()) -> tuple[list[dict], list[dict]]:
    """Metadata entries of the step model's tensors; `shared` names state outputs quantized like their input."""
    ins, outs = signature_io(model_bytes)
    inputs = []
    for name in step.input_names:
        role = "state" if name not in ("x", "x_reverse") else name
        inputs.append(tensor_entry(name, role, *ins[name]))
    outputs = [tensor_entry("y", "y", *outs["y"])]
    for name, _ in step.states:
        more = {"shared_quantization": True} if f"{name}_out" in shared else {}
        outputs.append(tensor_entry(f"{name}_out", "state", *outs[f"{name}_out"], state_input=name, **more))
    return inputs, outputs


def _saved_model(fn, where: Path) -> Path:
    from .._deps import tensorflow

    tf = tensorflow()
    mod = tf.Module()
    mod.f = fn
    tf.saved_model.save(mod, str(where), signatures={"serving_default": fn.get_concrete_function()})
    return where


def configure(converter, quantization: str, representative=None, io: str = "float") -> None:
    """Set the converter up for one quantization mode (representative: callable yielding dicts by input name)."""
    from .._deps import tensorflow

    tf = tensorflow()
    if quantization == "float":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization in ("int8", "int16x8"):
        # per-tensor weight scales, one per FullyConnected (all gates of x, or of h: stepmodel._tf_cell); per-channel
        # parameters would add ~20 % to the file (scales + int64 zero points)
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    if quantization == "int8":
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    elif quantization == "int16x8":
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]


def step_tflite(step: StepModel, quantization: str = "float", representative=None, **extra) -> bytes:
    """The step model as .tflite bytes (metadata included)."""
    from .._deps import tensorflow

    tf = tensorflow()
    with tempfile.TemporaryDirectory(prefix="edgelstm-step-") as tmp:
        sm = _saved_model(step.tf_function(batch=1), Path(tmp) / "saved")
        converter = tf.lite.TFLiteConverter.from_saved_model(str(sm))
        configure(converter, quantization, representative, extra.get("io", "float"))
        model_bytes = converter.convert()
    if quantization == "int8":
        model_bytes = drop_identity_clips(model_bytes)
    shared: list[str] = []
    if quantization == "int8" and extra.get("io") == "int8":
        # int8 state at the boundary: one quantization per state pair, so the runner carries it by copy
        model_bytes, shared = share_state_quantization(model_bytes, [(n, f"{n}_out") for n, _ in step.states])
    inputs, outputs = step_io_entries(step, model_bytes, shared)
    meta = build_metadata(step.cfg, "step", quantization, inputs, outputs, format="tflite", **extra)
    return add_tflite_metadata(model_bytes, meta)


def sequence_keras(cfg, model):
    """The sequence model rebuilt with batch size 1 (the converter cannot lower a loop with a dynamic batch)."""
    from ..models.build import build_model

    seq = build_model(cfg, batch_size=1)
    seq.set_weights(model.get_weights())
    return seq


def sequence_function(cfg, seq):
    from .._deps import tensorflow

    tf = tensorflow()
    spec = tf.TensorSpec([1, cfg.window, cfg.n_features], tf.float32, name="x")
    return tf.function(lambda x: {"y": seq(x, training=False)}, input_signature=[spec])


def sequence_tflite(cfg, model, quantization: str = "float", representative=None, **extra) -> bytes:
    """The whole-sequence model as .tflite bytes: tf_keras LSTM fuses to UNIDIRECTIONAL_SEQUENCE_LSTM."""
    from .._deps import tensorflow

    tf = tensorflow()
    seq = sequence_keras(cfg, model)
    with tempfile.TemporaryDirectory(prefix="edgelstm-seq-") as tmp:
        fn = sequence_function(cfg, seq)
        mod = tf.Module()
        mod.f, mod.m = fn, seq
        tf.saved_model.save(mod, str(Path(tmp) / "saved"), signatures={"serving_default": fn.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "saved"))
        configure(converter, quantization, representative, extra.get("io", "float"))
        model_bytes = converter.convert()
    ins, outs = signature_io(model_bytes)
    inputs = [tensor_entry("x", "window", *ins["x"])]
    outputs = [tensor_entry("y", "y", *outs["y"])]
    meta = build_metadata(cfg, "sequence", quantization, inputs, outputs, format="tflite", **extra)
    return add_tflite_metadata(model_bytes, meta)
