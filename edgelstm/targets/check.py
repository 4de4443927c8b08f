"""Checking a model file against a target profile (host side: it inspects the model with the interpreter)."""

from __future__ import annotations

from pathlib import Path

from ..capabilities import table_arch, why_not
from .profile import Target

BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")


def check_model(model: str | Path, target: Target) -> list[str]:
    """Every way the model file breaks the target, one line each naming the op or tensor; [] when it fits."""
    return check_model_full(model, target)[0]


def check_model_full(model: str | Path, target: Target) -> tuple[list[str], list[str]]:
    """(violations, warnings): warnings name older runtimes (runtime_limits) that could not load the model."""
    from ..modelfile.inspect import inspect_model

    info = inspect_model(model)
    name = Path(model).name
    out: list[str] = []
    meta = info.get("metadata") or {}
    if info["format"] not in target.formats:
        out.append(f"{name}: format {info['format']} is not run by {target.name} (it runs {', '.join(target.formats)})")
    quant = meta.get("quantization")
    if quant and quant not in target.modes:
        out.append(f"{name}: quantization {quant} is not run by {target.name} (it runs {', '.join(target.modes)})")
    if target.allowed_ops:
        for op, n in sorted(info["ops"].items()):
            if op not in target.allowed_ops:
                out.append(f"{name}: op {op} (x{n}) is not supported by {target.name}")
    if target.static_shapes:
        for side in ("inputs", "outputs"):
            for tname, t in info.get(side, {}).items():
                if any(d < 0 for d in t["shape"]):
                    out.append(f"{name}: {side[:-1]} {tname} has a dynamic shape {t['shape']}")
    if target.io == "int8" and info["format"] == "tflite":
        for side in ("inputs", "outputs"):
            for tname, t in info.get(side, {}).items():
                if t["dtype"] != "int8":
                    out.append(f"{name}: {side[:-1]} tensor {tname} is {t['dtype']}; {target.name} wants int8 I/O")
    if target.int8_everywhere and info["format"] == "tflite":
        tensors = info["tensors"]
        by_index = {i: t for i, t in enumerate(tensors)}
        for o in info["op_tensors"]:
            if o["op"] in BOUNDARY_OPS:
                continue
            for i in o["outputs"]:
                t = by_index.get(i)
                if t and t["dtype"] not in ("int8", "int32"):
                    tname = t["name"] or f"#{i}"  # compacted files keep names only at the I/O (export/compact.py)
                    out.append(
                        f"{name}: tensor {tname} (output of {o['op']}) is {t['dtype']}; "
                        f"{target.name} needs int8 everywhere"
                    )
    if meta and info["format"] in target.formats and quant in target.modes:  # what the lines above did not say
        why = why_not(
            table_arch(
                meta.get("arch", ""), meta.get("layers", 1), meta.get("peephole", False), bool(meta.get("conv"))
            ),
            meta.get("kind"),
            info["format"],
            quant,
            target.engine(info["format"]),
        )
        if why:
            out.append(f"{name}: {why}")
    warnings = []
    for spec, lim in target.runtime_limits.items():
        for op, maxv in lim.get("max_op_versions", {}).items():
            v = info["op_versions"].get(op)
            if v is not None and v > maxv:
                warnings.append(
                    f"{name}: op {op} version {v} cannot be loaded by {spec} (max {maxv}); "
                    f"use {target.runtime} {target.runtime_min_version}+"
                )
    return out, warnings
