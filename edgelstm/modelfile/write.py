"""Writing the edgelstm metadata into a model file (host side, at convert time: TensorFlow's flatbuffer tools for
.tflite, onnx for .onnx)."""

from __future__ import annotations

import json

from ..capabilities import cfg_arch, why_not
from .read import KEY, SCHEMA, validate


def add_tflite_metadata(model_bytes: bytes, meta: dict) -> bytes:
    """The model with `meta` stored as the named buffer "edgelstm" (replacing an older one). Needs TensorFlow."""
    import numpy as np

    from .._deps import tensorflow

    tensorflow()
    from tensorflow.lite.python import schema_py_generated as schema_fb
    from tensorflow.lite.tools import flatbuffer_utils

    validate(meta, "new metadata")
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    buf = schema_fb.BufferT()
    buf.data = np.frombuffer(json.dumps(meta, separators=(",", ":")).encode(), dtype=np.uint8)
    model.buffers.append(buf)
    entry = schema_fb.MetadataT()
    entry.name = KEY
    entry.buffer = len(model.buffers) - 1
    kept = [m for m in (model.metadata or []) if _name(m.name) != KEY]
    model.metadata = kept + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name(n) -> str:
    return n.decode() if isinstance(n, bytes) else str(n)


def add_onnx_metadata(model_bytes: bytes, meta: dict) -> bytes:
    """The ONNX model with `meta` as metadata_props["edgelstm"] (replacing an older one). Needs onnx."""
    import onnx

    validate(meta, "new metadata")
    model = onnx.load_from_string(model_bytes)
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != KEY]
    del model.metadata_props[:]
    for k, v in kept + [(KEY, json.dumps(meta))]:
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    return model.SerializeToString()


def normalization_entry(cfg) -> dict:
    """Mean and std per input channel, and the input map where there is one (a compander of heavy-tailed channels,
    or quantile tables)."""
    entry = {"mean": list(map(float, cfg.norm_mean)), "std": list(map(float, cfg.norm_std))}
    if any(s > 0 for s in getattr(cfg, "compand_scale", [])):
        center, scale = list(map(float, cfg.compand_center)), list(map(float, cfg.compand_scale))
        entry["compand"] = {"center": center, "scale": scale}
    if getattr(cfg, "quantile_knots", []):
        entry["quantile"] = {"knots": cfg.quantile_knots, "values": cfg.quantile_values}
    return entry


def build_metadata(cfg, kind: str, quantization: str, inputs: list[dict], outputs: list[dict], **extra) -> dict:
    """The metadata dict for a model converted from `cfg` (a ModelConfig); tensors as from `tensor_entry`."""
    from .. import __version__

    tnorm = None
    if cfg.target_mean:
        tnorm = {"mean": list(map(float, cfg.target_mean)), "std": list(map(float, cfg.target_std))}
    meta = {
        "schema": SCHEMA,
        "edgelstm_version": __version__,
        "kind": kind,
        "arch": cfg.arch,
        "peephole": bool(cfg.peephole),
        "task": cfg.task,
        "layers": cfg.layers,
        "units": cfg.units,
        "conv": [list(c) for c in getattr(cfg, "conv", [])],
        "frame": int(getattr(cfg, "frame", 1)),
        "pool": getattr(cfg, "pool", "last"),
        "merge": cfg.merge,
        "labels": list(cfg.labels),
        "channels": list(cfg.channels),
        "targets": list(cfg.targets),
        "horizon": cfg.horizon,
        "n_features": cfg.n_features,
        "n_outputs": cfg.n_outputs,
        "normalization": normalization_entry(cfg),
        "target_normalization": tnorm,
        "window": cfg.window,
        "stride": cfg.stride,
        "sample_rate": cfg.sample_rate,
        "quantization": quantization,
        "steppable": why_not(cfg_arch(cfg), "step") is None,
        "variable_length": bool(getattr(cfg, "masked", False)),
        "inputs": inputs,
        "outputs": outputs,
        **extra,
    }
    columns = (cfg.training or {}).get("columns")
    if columns:  # how the training CSV was read: `evaluate` reads new data with the same label/recording columns
        meta.setdefault("columns", columns)
    validate(meta, "new metadata")
    return meta


def tensor_entry(name: str, role: str, shape, dtype: str = "float32", scale=None, zero_point=None, **extra) -> dict:
    """One inputs/outputs entry; scale and zero_point stay None for float tensors."""
    return {
        "name": name,
        "role": role,
        "shape": [int(s) for s in shape],
        "dtype": dtype,
        "scale": None if scale is None else shortest_float32(scale),
        "zero_point": None if zero_point is None else int(zero_point),
        **extra,
    }


def shortest_float32(x: float) -> float:
    """x rounded to float32, spelled with the fewest digits that read back as that float32 (numpy's float32 repr):
    a quantization scale is a float32, and its 17-digit float64 spelling cost an int8-I/O file ~8 bytes per tensor."""
    import numpy as np

    return float(str(np.float32(x)))
