"""Drop int8 clip ops that cannot change what the model computes: the MINIMUM/MAXIMUM of the LSTM's cell state.

The int8 LSTM step model clips the rescaled cell state to ±TANH_CLIP before tanh (models/step.py). After
quantization the clip's input, output and bound share one scale, and MINIMUM/MAXIMUM compare raw int8 values. Such
an op is removed when no output can change:
- its bound quantizes to the int8 limit (127 for MINIMUM, -128 for MAXIMUM): the producer already saturates there,
  so the op returns its input for every possible input; or
- every consumer is an int8 TANH and the bound lies where that TANH's output is already saturated
  (|bound| ≥ TANH_SATURATED: tanh(3.5)·128 = 127.8 rounds to the int8 limit), so clipped and unclipped inputs give
  the same int8 output. The calibrated range of a trained model's clip ends at 4.0 on a rounding tie, and its bound
  often quantizes one step inside the limit: this is the case that removes it.
Each removed op saves ~130 bytes (its output and bound tensors with their quantization, a buffer, an operator
code: both ops are 264 bytes of a 1x8 LSTM's 5.7 KB int8 file).
"""

from __future__ import annotations

import numpy as np

from .compact import keep_used_buffers

TANH_SATURATED = 3.5


def drop_identity_clips(model_bytes: bytes) -> bytes:
    from .._deps import tensorflow

    tensorflow()
    from tensorflow.lite.python import schema_py_generated as schema_fb
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    ops = schema_fb.BuiltinOperator
    names = {ops.MINIMUM: "min", ops.MAXIMUM: "max", ops.TANH: "tanh"}

    def kind(op) -> str | None:
        code = model.operatorCodes[op.opcodeIndex]
        return names.get(max(code.builtinCode, code.deprecatedBuiltinCode))

    changed = False
    for sg in model.subgraphs:
        graph_out = {int(i) for i in sg.outputs}
        removed = True
        while removed:  # a MINIMUM feeding a MAXIMUM feeding TANH: the MINIMUM sees TANH once MAXIMUM is gone
            removed = False
            for op in sg.operators:
                k = kind(op)
                if k not in ("min", "max") or int(op.outputs[0]) in graph_out:
                    continue
                dst = int(op.outputs[0])
                consumers = [kind(o) for o in sg.operators if dst in [int(i) for i in o.inputs]]
                src = _pass_through(model, sg, op, k, consumers)
                if src is None:
                    continue
                for other in sg.operators:
                    other.inputs = np.where(np.asarray(other.inputs) == dst, src, other.inputs).astype(np.int32)
                sg.operators = [o for o in sg.operators if o is not op]
                removed = changed = True
                break
    if not changed:
        return model_bytes
    _remove_unused(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _pass_through(model, sg, op, kind: str, consumers: list) -> int | None:
    """The input whose value the op can be replaced by without changing any output, or None."""
    from tensorflow.lite.python import schema_py_generated as schema_fb

    int8 = schema_fb.TensorType.INT8
    ins = [int(i) for i in op.inputs]
    if len(ins) != 2 or len(op.outputs) != 1:
        return None
    consts = [i for i in ins if _data(model, sg.tensors[i]) is not None]
    if len(consts) != 1 or ins[0] == ins[1]:
        return None
    (src,) = [i for i in ins if i not in consts]
    out, inp, bound = sg.tensors[int(op.outputs[0])], sg.tensors[src], sg.tensors[consts[0]]
    if any(t.type != int8 for t in (out, inp, bound)) or _q(out) is None or not _q(out) == _q(inp) == _q(bound):
        return None
    if list(np.asarray(out.shape)) != list(np.asarray(inp.shape)):
        return None
    values = np.frombuffer(bytes(_data(model, bound)), np.int8).astype(np.int64)
    if values.size == 0:
        return None
    limit = 127 if kind == "min" else -128
    if np.all(values == limit):
        return src
    scale, zp = _q(out)
    real = (values - zp) * scale
    saturated = np.all(real >= TANH_SATURATED) if kind == "min" else np.all(real <= -TANH_SATURATED)
    if saturated and consumers and all(c == "tanh" for c in consumers):
        return src
    return None


def _data(model, t):
    d = model.buffers[t.buffer].data
    return None if d is None or len(d) == 0 else d


def _q(t):
    q = t.quantization
    if q is None or q.scale is None or q.zeroPoint is None or len(q.scale) != 1 or len(q.zeroPoint) != 1:
        return None
    return float(q.scale[0]), int(q.zeroPoint[0])


def _remove_unused(model) -> None:
    """Renumber tensors, buffers and operator codes after ops were removed."""
    used_codes = sorted({op.opcodeIndex for sg in model.subgraphs for op in sg.operators})
    code_map = {old: new for new, old in enumerate(used_codes)}
    model.operatorCodes = [model.operatorCodes[i] for i in used_codes]
    tensor_maps = []
    for sg in model.subgraphs:
        used = {int(i) for i in sg.inputs} | {int(i) for i in sg.outputs}
        for op in sg.operators:
            op.opcodeIndex = code_map[op.opcodeIndex]
            used |= {int(i) for i in op.inputs if i >= 0} | {int(i) for i in op.outputs}
            used |= {int(i) for i in (op.intermediates if op.intermediates is not None else [])}
        keep = sorted(used)
        tmap = {old: new for new, old in enumerate(keep)}
        tensor_maps.append(tmap)
        sg.tensors = [sg.tensors[i] for i in keep]
        sg.inputs = np.array([tmap[int(i)] for i in sg.inputs], np.int32)
        sg.outputs = np.array([tmap[int(i)] for i in sg.outputs], np.int32)
        for op in sg.operators:
            op.inputs = np.array([tmap[int(i)] if i >= 0 else -1 for i in op.inputs], np.int32)
            op.outputs = np.array([tmap[int(i)] for i in op.outputs], np.int32)
            if op.intermediates is not None:
                op.intermediates = np.array([tmap[int(i)] for i in op.intermediates], np.int32)
    for sig in model.signatureDefs or []:
        tmap = tensor_maps[sig.subgraphIndex or 0]
        for t in list(sig.inputs) + list(sig.outputs):
            t.tensorIndex = tmap[t.tensorIndex]
    keep_used_buffers(model)
