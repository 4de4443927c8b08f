"""Target profiles (targets/*.toml): parsing and validation only, stdlib, so the device side can read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..capabilities import MODES
from ..errors import InputError
from ..resources import data_dir, read_toml

TARGET_DIR = data_dir("targets")
REQUIRED = (
    "name",
    "description",
    "runtime",
    "runtime_min_version",
    "format",
    "kind",
    "quantization",
    "modes",
    "io",
    "threads",
)


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
    # microcontrollers (format "c": convert --to c): the compiler's CPU flags, the model's flash/RAM budget, and
    # the qemu-system-arm board that runs the check (its stack top: the end of its RAM)
    cflags: list[str] = field(default_factory=list)
    flash_bytes: int = 0
    ram_bytes: int = 0
    qemu_machine: str = ""
    qemu_stack_top: int = 0
    path: str = ""

    def __post_init__(self) -> None:
        self.formats = self.formats or [self.format]
        where = self.path or self.name
        checks = (
            ("format", self.format, ("tflite", "onnx", "c")),
            ("kind", self.kind, ("step", "sequence")),
            ("io", self.io, ("float", "int8")),
            ("quantization", self.quantization, MODES),
        )
        for key, val, allowed in checks:
            if val not in allowed:
                raise InputError(f"{where}: {key} {val!r} is not one of {', '.join(allowed)}")
        bad = [m for m in self.modes if m not in MODES]
        if bad:
            raise InputError(f"{where}: unknown mode(s) {', '.join(bad)} in modes")
        bad = [f for f in self.formats if f not in ("tflite", "onnx", "c", "rocket")]
        if bad:
            raise InputError(f"{where}: unknown format(s) {', '.join(bad)} in formats")
        if self.quantization not in self.modes:
            raise InputError(f"{where}: preferred quantization {self.quantization} is not in its modes")

    def engine(self, fmt: str) -> str:
        """The runtime that runs a `fmt` model on this target, as capabilities.RUNTIMES names it."""
        if fmt == "onnx":
            return "onnxruntime"
        if fmt == "rocket":  # a .rocket model steps in edgelstm's own runtime, on numpy
            return "numpy"
        if "edgetpu" in self.delegate:
            return "edgetpu"
        if self.cflags:  # a microcontroller: a .tflite runs in TFLite Micro there
            return "tflite-micro"
        return "tflite-runtime" if self.runtime == "tflite-runtime" else "litert"

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
    data = read_toml(path)
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
