"""ONNX export (tf2onnx, opset 17) of the step model and of the sequence model, with edgelstm metadata inside.

From tf_keras, LSTM/GRU/BiLSTM sequence models become ONNX LSTM/GRU ops (docs/design.md); the step model is plain ops.
"""

from __future__ import annotations

from ..modelfile.write import add_onnx_metadata, build_metadata, tensor_entry
from ..models.step import StepModel

OPSET = 17


def _tidy(model, rename: dict[str, str] | None = None):
    """Drop initializers from the graph inputs (tf2onnx lists them) and rename outputs (e.g. probs -> y)."""
    inits = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    for old, new in (rename or {}).items():
        for node in model.graph.node:
            node.output[:] = [new if o == old else o for o in node.output]
            node.input[:] = [new if o == old else o for o in node.input]
        for o in model.graph.output:
            if o.name == old:
                o.name = new
    return model


def step_onnx(step: StepModel, **extra) -> bytes:
    import tf2onnx

    fn = step.tf_function(batch=1, fused=False)  # QDQ keeps a scale per gate (stepmodel._tf_cell)
    model, _ = tf2onnx.convert.from_function(fn, input_signature=fn.input_signature, opset=OPSET)
    model = _tidy(model)
    F = step.cfg.n_features
    inputs = [tensor_entry(n, n, [1, F]) for n in step.input_names if n in ("x", "x_reverse")]
    inputs += [tensor_entry(n, "state", [1, u]) for n, u in step.states]
    outputs = [tensor_entry("y", "y", [1, step.cfg.n_outputs])]
    outputs += [tensor_entry(f"{n}_out", "state", [1, u], state_input=n) for n, u in step.states]
    meta = build_metadata(
        step.cfg, "step", extra.pop("quantization", "float"), inputs, outputs, format="onnx", opset=OPSET, **extra
    )
    return add_onnx_metadata(model.SerializeToString(), meta)


def sequence_onnx(cfg, model, **extra) -> bytes:
    import tf2onnx

    from .._deps import tensorflow
    from .tflite import sequence_keras

    tf = tensorflow()
    seq = sequence_keras(cfg, model)
    spec = [tf.TensorSpec([1, cfg.window, cfg.n_features], tf.float32, name="x")]
    onnx_model, _ = tf2onnx.convert.from_keras(seq, input_signature=spec, opset=OPSET)
    onnx_model = _tidy(onnx_model, {seq.output_names[0]: "y"})
    inputs = [tensor_entry("x", "window", [1, cfg.window, cfg.n_features])]
    outputs = [tensor_entry("y", "y", [1, cfg.n_outputs])]
    meta = build_metadata(
        cfg, "sequence", extra.pop("quantization", "float"), inputs, outputs, format="onnx", opset=OPSET, **extra
    )
    return add_onnx_metadata(onnx_model.SerializeToString(), meta)
