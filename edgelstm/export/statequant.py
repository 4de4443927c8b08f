"""Give each int8 state output the quantization of the state input it feeds, so a runner carries state by copy.

The converter calibrates `h0` and `h0_out` separately, so their (scale, zero point) differ slightly and a runner
must requantize every state tensor at every step. TFLite kernels that rescale (FULLY_CONNECTED, ADD, SUB, MUL,
QUANTIZE) compute their multipliers from the tensors' quantization when the interpreter prepares the graph, so
setting both tensors of a pair to one common quantization, covering both calibrated ranges so nothing clips more
than before, changes only where the rounding happens (once instead of twice). A pair is left alone when the common
scale would be coarser than the input's (MAX_COARSENING), or when an op touching either tensor does
not rescale: LOGISTIC/TANH/SOFTMAX have fixed output scales; RESHAPE, SPLIT, CONCATENATION, MINIMUM/MAXIMUM pass
int8 values through and assume the same quantization on both sides.

Runs at convert time (needs TensorFlow's flatbuffer schema); the pairs come from the signature names, so it is the
same for every architecture.
"""

from __future__ import annotations

import os

import numpy as np

# Ops whose int8 kernels requantize their output from the tensors' own scales (computed at Prepare time).
RESCALING_OPS = ("FULLY_CONNECTED", "ADD", "SUB", "MUL", "QUANTIZE")
CONSUMING_OPS = RESCALING_OPS + ("DEQUANTIZE",)
# A common scale coarser than the state input's by more than this is refused: the carried state would lose
# resolution. Measured on the LSTM's per-unit scaled cell state c (output range ~4 % wider than the input's):
# sharing it lost 0.2-0.7 points of argmax agreement with Keras and raised the mean error 7-10 %; h pairs
# (within 0.1 %) shared lost nothing and lowered the error.
MAX_COARSENING = 0.01
# Test and diagnostic hook: keep the converter's own state quantization (the runner then requantizes).
KEEP_ENV = "EDGELSTM_KEEP_STATE_QUANT"


def _range(scale: float, zp: int, info) -> tuple[float, float]:
    return (info.min - zp) * scale, (info.max - zp) * scale


def common_quantization(q_in: tuple[float, int], q_out: tuple[float, int], dtype=np.int8) -> tuple[float, int]:
    """One (scale, zero point) whose range covers both; one of the two when it already covers the other."""
    info = np.iinfo(dtype)
    (lo_i, hi_i), (lo_o, hi_o) = _range(*q_in, info), _range(*q_out, info)
    if lo_i <= lo_o and hi_i >= hi_o:
        return q_in
    if lo_o <= lo_i and hi_o >= hi_i:
        return q_out
    lo, hi = min(lo_i, lo_o, 0.0), max(hi_i, hi_o, 0.0)
    scale = np.float32((hi - lo) / (info.max - info.min))
    zp = int(np.clip(round(info.min - lo / float(scale)), info.min, info.max))
    while _range(float(scale), zp, info)[1] < hi or _range(float(scale), zp, info)[0] > lo:  # zp rounded: widen
        scale = np.nextafter(scale, np.float32(np.inf))
    return float(scale), zp


def share_state_quantization(model_bytes: bytes, pairs: list[tuple[str, str]]) -> tuple[bytes, list[str]]:
    """`pairs` of (state input, state output) signature names → (model bytes, outputs now sharing their input's
    quantization). Pairs that are float, per-channel or touched by a non-rescaling op are left as they are."""
    if os.environ.get(KEEP_ENV, "") not in ("", "0"):
        return model_bytes, []
    from .._deps import tensorflow

    tensorflow()
    from tensorflow.lite.python import schema_py_generated as schema_fb
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    if not model.signatureDefs or len(model.subgraphs) != 1:
        return model_bytes, []
    sig = model.signatureDefs[0]
    sg = model.subgraphs[model.signatureDefs[0].subgraphIndex or 0]
    names = {v: k for k, v in vars(schema_fb.BuiltinOperator).items() if not k.startswith("_")}
    ins = {_s(t.name): t.tensorIndex for t in sig.inputs}
    outs = {_s(t.name): t.tensorIndex for t in sig.outputs}

    def op_name(op) -> str:
        code = model.operatorCodes[op.opcodeIndex]
        return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")

    producers, consumers = {}, {}
    for op in sg.operators:
        for i in op.outputs:
            producers[int(i)] = op_name(op)
        for i in op.inputs:
            if i >= 0:
                consumers.setdefault(int(i), []).append(op_name(op))
    graph_outputs = {int(i) for i in sg.outputs}
    shared = []
    for name_in, name_out in pairs:
        if name_in not in ins or name_out not in outs:
            continue
        ti, to = int(ins[name_in]), int(outs[name_out])
        t_in, t_out = sg.tensors[ti], sg.tensors[to]
        q_in, q_out = _per_tensor(t_in), _per_tensor(t_out)
        if q_in is None or q_out is None or t_in.type != t_out.type or t_in.type != schema_fb.TensorType.INT8:
            continue
        if ti in graph_outputs or producers.get(to) not in RESCALING_OPS:
            continue
        if any(c not in CONSUMING_OPS for c in consumers.get(ti, []) + consumers.get(to, [])):
            continue
        if q_in != q_out:
            scale, zp = common_quantization(q_in, q_out)
            if scale > q_in[0] * (1 + MAX_COARSENING):
                continue
            for t in (t_in, t_out):
                t.quantization.scale = np.array([scale], np.float32)
                t.quantization.zeroPoint = np.array([zp], np.int64)
                t.quantization.min = t.quantization.max = None
        shared.append(name_out)
    if not shared:
        return model_bytes, []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), shared


def _per_tensor(t) -> tuple[float, int] | None:
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) != 1 or q.zeroPoint is None or len(q.zeroPoint) != 1:
        return None
    return float(np.float32(q.scale[0])), int(q.zeroPoint[0])


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
