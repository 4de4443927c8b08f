"""ONNX Runtime quantization: static QDQ (int8) for the step model, dynamic for the sequence LSTM (docs/design.md:
static QDQ leaves an ONNX LSTM float; ONNX Runtime quantizes LSTM only dynamically, GRU not at all)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..capabilities import ONNX_MODES
from ..errors import InputError
from ..modelfile.read import KEY
from ..modelfile.write import add_onnx_metadata


def quantize_onnx(blob: bytes, mode: str, representative, out_hint: str = "") -> bytes:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if mode not in ONNX_MODES:
        raise InputError(f"mode {mode!r} is not available for ONNX; use one of {', '.join(ONNX_MODES)}")
    model = onnx.load_from_string(blob)
    meta = json.loads({p.key: p.value for p in model.metadata_props}[KEY])
    with tempfile.TemporaryDirectory(prefix="edgelstm-ortq-") as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "quant.onnx"
        src.write_bytes(blob)
        if mode == "dynamic":
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        else:

            class Reader(CalibrationDataReader):
                def __init__(self) -> None:
                    self.it = iter(representative())

                def get_next(self):
                    return next(self.it, None)

            quantize_static(
                str(src),
                str(dst),
                Reader(),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
            )
        out = compact(onnx.load(str(dst))).SerializeToString()
    meta["quantization"] = mode
    return add_onnx_metadata(out, meta)


def compact(model):
    """The same graph in fewer bytes: ONNX Runtime's QDQ pass names every QuantizeLinear/DequantizeLinear node and
    tensor after its source (`Const_7:0_DequantizeLinear_Output`, ~140 B per node) and gives each quantized tensor
    its own scale and zero-point initializers; on a step model's small matmuls that outweighs the 3 B per weight
    int8 saves. Identical initializers are stored once, internal tensors and nodes get short names (the graph's
    inputs and outputs, which the metadata names, keep theirs) and the optional shape annotations are dropped."""
    from onnx import numpy_helper

    g = model.graph
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    alias: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    unique = []
    for init in g.initializer:
        a = numpy_helper.to_array(init)
        key = (init.data_type, a.shape, a.tobytes())
        if key in seen and init.name not in keep:
            alias[init.name] = seen[key]
        else:
            seen[key] = init.name
            unique.append(init)
    names: dict[str, str] = {}

    def short(name: str) -> str:
        name = alias.get(name, name)
        if not name or name in keep:
            return name
        return names.setdefault(name, f"t{len(names):x}")

    for init in unique:
        init.name = short(init.name)
    del g.initializer[:]
    g.initializer.extend(unique)
    for i, node in enumerate(g.node):
        node.name = f"n{i:x}"
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    del g.value_info[:]
    return model
