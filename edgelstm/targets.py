"""Target profiles (targets/*.toml) and checking a model file against one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .resources import data_dir

TARGET_DIR = data_dir("targets")
MODES = ("float", "int8", "int16x8", "dynamic", "float16")
REQUIRED = ("name", "description", "runtime", "runtime_min_version", "format", "kind", "quantization", "modes", "io",
            "threads")


@dataclass
class Target:
    name: str
    description: str
    runtime: str
    runtime_min_version: str
    format: str
    kind: str
    quantization: str
    modes: list[str]
    io: str
    threads: int
    delegate: str = ""
    formats: list[str] = field(default_factory=list)
    int8_everywhere: bool = False
    static_shapes: bool = True
    allowed_ops: list[str] = field(default_factory=list)
    runtime_limits: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    path: str = ""

    def __post_init__(self) -> None:
        self.formats = self.formats or [self.format]
        where = self.path or self.name
        checks = (("format", self.format, ("tflite", "onnx")), ("kind", self.kind, ("step", "sequence")),
                  ("io", self.io, ("float", "int8")), ("quantization", self.quantization, MODES))
        for key, val, allowed in checks:
            if val not in allowed:
                raise InputError(f"{where}: {key} {val!r} is not one of {', '.join(allowed)}")
        bad = [m for m in self.modes if m not in MODES]
        if bad:
            raise InputError(f"{where}: unknown mode(s) {', '.join(bad)} in modes")
        if self.quantization not in self.modes:
            raise InputError(f"{where}: preferred quantization {self.quantization} is not in its modes")

    def check_mode(self, mode: str, fmt: str | None = None) -> None:
        """Refuse, before any work, a mode or format this target cannot run."""
        if mode not in self.modes:
            raise InputError(f"target {self.name} cannot run {mode} models; it runs {', '.join(self.modes)}")
        if fmt and fmt not in self.formats:
            raise InputError(f"target {self.name} cannot run {fmt} models; it runs {', '.join(self.formats)}")


def target_names() -> list[str]:
    return sorted(p.stem for p in TARGET_DIR.glob("*.toml")) if TARGET_DIR.is_dir() else []


def load_target(spec: str | Path) -> Target:
    """A target by name (targets/NAME.toml) or by path to a .toml."""
    path = Path(spec)
    if path.suffix != ".toml":
        path = TARGET_DIR / f"{spec}.toml"
        if not path.is_file():
            raise InputError(f"unknown target {str(spec)!r}; choose one of {', '.join(target_names())}")
    elif not path.is_file():
        raise InputError(f"{path}: no such target file")
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as ex:
        raise InputError(f"{path}: not valid TOML ({ex})") from None
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise InputError(f"{path}: missing key(s) {', '.join(missing)}")
    known = set(Target.__dataclass_fields__) - {"path"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{path}: unknown key(s) {', '.join(unknown)}")
    if data["name"] != path.stem:
        raise InputError(f"{path}: name {data['name']!r} does not match the file name")
    return Target(**data, path=str(path))


BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")


def check_model(model: str | Path, target: Target) -> list[str]:
    """Every way the model file breaks the target, one line each naming the op or tensor; [] when it fits."""
    return check_model_full(model, target)[0]


def check_model_full(model: str | Path, target: Target) -> tuple[list[str], list[str]]:
    """(violations, warnings): warnings name older runtimes (runtime_limits) that could not load the model."""
    from .modelinfo import inspect_model

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
                    tname = t["name"] or f"#{i}"  # compacted files keep names only at the I/O (convert/compact.py)
                    out.append(f"{name}: tensor {tname} (output of {o['op']}) is {t['dtype']}; "
                               f"{target.name} needs int8 everywhere")
    warnings = []
    for spec, lim in target.runtime_limits.items():
        for op, maxv in lim.get("max_op_versions", {}).items():
            v = info["op_versions"].get(op)
            if v is not None and v > maxv:
                warnings.append(f"{name}: op {op} version {v} cannot be loaded by {spec} (max {maxv}); "
                                f"use {target.runtime} {target.runtime_min_version}+")
    return out, warnings
