"""What is inside a .tflite or .onnx file: ops (with counts and versions), tensors, I/O, size, metadata.

Used by `edgelstm inspect` and by the target checks. Needs only the runtime (ai-edge-litert / onnxruntime, onnx).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from .read import model_format, read_metadata, tflite_operator_versions


def _tensor(d: dict) -> dict:
    scale, zp = d.get("quantization", (0.0, 0))
    q = d.get("quantization_parameters", {})
    scales = np.asarray(q.get("scales", []))
    return {
        "name": d["name"],
        "shape": [int(s) for s in d.get("shape_signature", d["shape"])],
        "dtype": np.dtype(d["dtype"]).name,
        "scale": float(scale) if scale else None,
        "zero_point": int(zp) if scale else None,
        "per_channel": bool(scales.size > 1),
    }


def inspect_model(path: str | Path) -> dict:
    path = Path(path)
    fmt = model_format(path)
    info = _tflite(path) if fmt == "tflite" else _rocket(path) if fmt == "rocket" else _onnx(path)
    info["file"] = str(path)
    info["size_bytes"] = path.stat().st_size
    try:
        info["metadata"] = read_metadata(path)
    except ModelFileError as ex:
        info["metadata"] = None
        info["metadata_error"] = str(ex)
    return info


def _tflite(path: Path) -> dict:
    from .._deps import require

    litert = require("ai_edge_litert.interpreter")
    Interpreter, OpResolverType = litert.Interpreter, litert.OpResolverType
    data = path.read_bytes()
    versions = tflite_operator_versions(data, str(path))  # also rejects a non-TFLite file early
    try:
        # without the default XNNPACK delegate, which would replace the model's ops by DELEGATE nodes
        it = Interpreter(
            model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        it.allocate_tensors()
    except (ValueError, RuntimeError) as ex:
        raise ModelFileError(f"{path}: cannot load the TFLite model ({str(ex).strip().splitlines()[0]})") from None
    ops = it._get_ops_details()
    names = [o["op_name"] for o in ops]
    op_versions: dict[str, int] = {}
    for name, (_, ver) in zip(names, versions):
        op_versions[name] = max(op_versions.get(name, 0), ver)
    tensors = []
    for d in it.get_tensor_details():
        try:
            tensors.append(_tensor(d))
        except TypeError:
            continue
    sig = it.get_signature_list()
    io = {}
    if "serving_default" in sig:
        r = it.get_signature_runner("serving_default")
        io = {
            "inputs": {k: _tensor(v) for k, v in r.get_input_details().items()},
            "outputs": {k: _tensor(v) for k, v in r.get_output_details().items()},
        }
    return {
        "format": "tflite",
        "ops": dict(Counter(names)),
        "op_versions": op_versions,
        "n_ops": len(names),
        "tensors": tensors,
        **io,
        "op_tensors": [{"op": o["op_name"], "outputs": [int(i) for i in o["outputs"]]} for o in ops],
    }


def _rocket(path: Path) -> dict:
    """A .rocket file has no graph: its arrays stand for the tensors, its one input and output for the I/O."""
    from ..runtime.rocket import read_rocket

    meta, a = read_rocket(path)
    plain = {"scale": None, "zero_point": None, "per_channel": False}  # float, or int8 with its own `scale` array
    tensors = [
        {"name": k, "shape": list(np.shape(v)), "dtype": np.asarray(v).dtype.name, **plain}
        for k, v in a.items()
        if k != "dilations"
    ]
    io = {
        side: {t["name"]: {"name": t["name"], "shape": t["shape"], "dtype": t["dtype"], **plain} for t in meta[side]}
        for side in ("inputs", "outputs")
    }
    return {"format": "rocket", "ops": {}, "op_versions": {}, "n_ops": 0, "tensors": tensors, **io, "op_tensors": []}


def _onnx(path: Path) -> dict:
    from .._deps import require

    onnx = require("onnx")

    try:
        model = onnx.load(str(path))
    except Exception as ex:
        raise ModelFileError(f"{path}: cannot load the ONNX model ({str(ex).strip().splitlines()[0]})") from None
    g = model.graph
    names = [n.op_type for n in g.node]

    def vi(v) -> dict:
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        return {
            "name": v.name,
            "shape": dims,
            "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
            "scale": None,
            "zero_point": None,
            "per_channel": False,
        }

    return {
        "format": "onnx",
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "ops": dict(Counter(names)),
        "op_versions": {},
        "n_ops": len(names),
        "tensors": [],
        "inputs": {v.name: vi(v) for v in g.input},
        "outputs": {v.name: vi(v) for v in g.output},
        "initializer_dtypes": dict(
            Counter(onnx.helper.tensor_dtype_to_np_dtype(i.data_type).name for i in g.initializer)
        ),
    }
