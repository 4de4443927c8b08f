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
        out = dst.read_bytes()
    meta["quantization"] = mode
    return add_onnx_metadata(out, meta)
