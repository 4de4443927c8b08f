"""`edgelstm convert`: the sequence and/or step model of a model directory as .tflite or .onnx files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..capabilities import cfg_arch, model_length, why_not
from ..errors import InputError, ModelDirError
from ..models.modeldir import KERAS_FILE, ROCKET_FILE, check_output_dir, load_config
from .isolated import convert_in_subprocess

FORMATS = ("tflite", "onnx")
KINDS = ("sequence", "step", "both")


def output_name(kind: str, to: str, quantization: str = "float") -> str:
    return f"{kind}.{to}" if quantization == "float" else f"{kind}.{quantization}.{to}"


def resolve_kinds(cfg, kind: str, say: Callable[[str], None]) -> list[str]:
    """The kinds to make for --kind (both: each this model has; a single one it lacks is refused, saying why)."""
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    arch = cfg_arch(cfg)
    why = {k: why_not(arch, k, length=model_length(cfg)) for k in ("sequence", "step")}
    for k, reason in why.items():
        if reason:  # the layer count, where the reason is a stacked BiLSTM's
            why[k] = reason.replace("a stacked BiLSTM", f"a stacked BiLSTM ({cfg.layers} layers)", 1)
    wanted = ["sequence", "step"] if kind == "both" else [kind]
    if kind != "both" and why[kind]:
        raise InputError(why[kind])
    made = [k for k in wanted if not why[k]]
    for k in wanted:
        if why[k]:
            say(f"note: {why[k].split(':')[0]}; writing the {' and '.join(made)} model only")
    if not made:
        raise InputError("; ".join(why[k] for k in wanted))
    return made


def check_format(cfg, to: str) -> None:
    """Refuse, in the table's words, a format this model has no form in (a rocket model is a .rocket file only)."""
    why = why_not(cfg_arch(cfg), format=to)
    if why:
        raise InputError(why)


def check_model_dir(model_dir: Path):
    cfg = load_config(model_dir)
    need = ROCKET_FILE if cfg.arch == "rocket" else KERAS_FILE
    if not (Path(model_dir) / need).is_file():
        raise ModelDirError(f"{model_dir}: no {need} in this model directory")
    return cfg


def export_one(
    model_dir: Path,
    out_dir: Path,
    kind: str,
    to: str,
    quantization: str = "float",
    calibration: str | None = None,
    extra: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """One conversion in a subprocess, written to a temporary file and renamed only when complete."""
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / output_name(kind, to, quantization)
    tmp = out_dir / f".{final.name}.partial-{os.getpid()}"
    job = {
        "model_dir": str(model_dir),
        "kind": kind,
        "to": to,
        "quantization": quantization,
        "calibration": calibration,
        "out": str(tmp),
        "extra": extra or {},
    }
    try:
        convert_in_subprocess(job, progress)
        os.replace(tmp, final)
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()  # leave nothing behind, not even the folder this call made
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return final


def convert(
    model_dir: str | Path,
    to: str = "tflite",
    kind: str = "both",
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Float exports; returns the written files."""
    say = progress or (lambda _m: None)
    model_dir = Path(model_dir)
    if to not in FORMATS:
        raise InputError(f"unknown format {to!r}; choose one of {', '.join(FORMATS)}")
    cfg = check_model_dir(model_dir)
    check_format(cfg, to)
    if to == "onnx":
        from .._deps import require

        require("onnxruntime")  # every .onnx is run against Keras before it is renamed into place: say so first
    out_dir = Path(out) if out else model_dir
    check_output_dir(out_dir)
    return [export_one(model_dir, out_dir, k, to, progress=progress) for k in resolve_kinds(cfg, kind, say)]


def source_tflite(model: Path, mode: str, progress=None) -> Path:
    """The .tflite to embed for MODEL (a model directory or a .tflite file)."""
    model = Path(model)
    if model.suffix == ".tflite":
        if not model.is_file():
            raise InputError(f"{model}: no such model file")
        return model
    cfg = check_model_dir(model)
    check_format(cfg, "tflite")
    resolve_kinds(cfg, "step", progress or (lambda _m: None))  # refuses a model with no step model, saying why
    path = model / output_name("step", "tflite", mode)
    if path.is_file():
        return path
    if mode != "float":
        raise InputError(f"{model}: no {path.name}; make it first: edgelstm quantize {model} --mode {mode}")
    return export_one(model, model, "step", "tflite", progress=progress)


def write_c(model_dir: str | Path, out: str | Path, name: str = "model", mode: str = "float"):
    """`convert --to c`: the C folder of a model directory (float: export/csource.py from the Keras weights; int8:
    export/cint8.py from its step.int8.tflite); refused in one line, nothing written, when it has no C form."""
    from ..models.modeldir import load_keras
    from ..models.step import build_step_model
    from .csource import CFolder, check_name, refuse_reason, render, write_folder

    check_name(name)
    cfg = check_model_dir(Path(model_dir))
    reason = refuse_reason(cfg, mode)
    if reason:
        raise InputError(reason)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: exists and is not an empty folder; choose another -o")
    if mode == "int8":
        from .cint8 import render_int8

        files = render_int8(source_tflite(Path(model_dir), "int8"), cfg, name)
    else:
        cfg, model = load_keras(model_dir)
        files = render(build_step_model(cfg, model), name)
    write_folder(files, out)
    return CFolder(out, name, cfg.arch == "bilstm")
