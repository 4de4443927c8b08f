"""`edgelstm quantize`: calibration → quantized .tflite/.onnx (in a subprocess) → accuracy report → target check.

Returns a `QuantizeResult`; the CLI formats it (cli/quantize.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..capabilities import CALIBRATED, ONNX_MODES, QUANTIZED, cfg_arch, model_length, why_not
from ..data.prepare import check_training_data
from ..errors import InputError
from ..models.modeldir import check_output_dir
from .calibrate import calibration_windows, load_recipe, step_samples
from .convert import check_model_dir, export_one, resolve_kinds

# below this argmax agreement with float (or above this accuracy drop) a quantized model is flagged
MIN_AGREEMENT = 0.99
MAX_ACCURACY_DROP = 0.01


@dataclass
class TargetCheck:
    file: Path
    violations: list[str]
    warnings: list[str]


@dataclass
class QuantizeResult:
    files: list[Path]
    mode: str
    notes: list[str] = field(default_factory=list)  # size notes (quantize.size_note), a report not made
    report: dict | None = None  # evaluate.report.build_report's dict, as written to report.json
    report_path: Path | None = None
    warnings: list[str] = field(default_factory=list)  # fidelity below the bars (fidelity_warnings)
    target: str | None = None
    checks: list[TargetCheck] = field(default_factory=list)
    not_made: list[str] = field(default_factory=list)  # what --kind both asked for that cannot be made, and why

    @property
    def violations(self) -> list[str]:
        return [v for c in self.checks for v in c.violations]


def check_supported(cfg, kinds: list[str], fmt: str, mode: str, kind: str = "step") -> tuple[list[str], list[str]]:
    """(the kinds that can be made, a line for each that cannot), before any work, from the capabilities table
    (e.g. a converter crash). A kind asked for by name that cannot be made is refused; `--kind both` makes what
    it can and is refused only when nothing can be made."""
    arch = cfg_arch(cfg)
    made, not_made = [], []
    for k in kinds:
        why = why_not(arch, k, fmt, mode, length=model_length(cfg))
        if why:
            not_made.append(f"cannot make the {mode} {k} model of this {arch} as {fmt}: {why}")
        else:
            made.append(k)
    if not_made and (kind != "both" or not made):
        raise InputError("; ".join(not_made))
    return made, not_made


def quantize(
    model_dir: str | Path,
    mode: str,
    calibration: str | Path = "default",
    kind: str = "step",
    fmt: str = "tflite",
    out: str | Path | None = None,
    io: str = "float",
    progress: Callable[[str], None] | None = None,
    data: str | Path | None = None,
    needs_data: bool = False,
    not_made: list[str] | None = None,
) -> list[Path]:
    """Quantize the step and/or sequence model; returns the written files.

    io="float" keeps float tensors at the model boundary (the runner carries float state between steps; the
    model quantizes inside); io="int8" makes every input/output int8, and the runner requantizes each state
    output with the matching input's scale/zero point (both stored in the metadata). `data`: the training data
    where config.json's path is not there; `needs_data`: check it is there before any work (for the report);
    `not_made` collects what `kind="both"` could not make, and why (check_supported).
    """
    say = progress or (lambda _m: None)
    model_dir = Path(model_dir)
    if mode not in QUANTIZED:
        raise InputError(f"unknown quantization mode {mode!r}; choose one of {', '.join(QUANTIZED)}")
    if fmt not in ("tflite", "onnx", "rocket"):
        raise InputError(f"unknown format {fmt!r}; choose tflite, onnx or rocket")
    if io not in ("float", "int8"):
        raise InputError(f"unknown I/O type {io!r}; choose float or int8")
    if fmt == "onnx" and mode not in ONNX_MODES:
        raise InputError(f"mode {mode} is not available for ONNX; use int8 (static QDQ) or dynamic")
    if fmt == "onnx":
        from .._deps import require

        require("onnxruntime")  # ONNX Runtime quantizes and scores the ONNX file: say so before any work
    cfg = check_model_dir(model_dir)
    wanted = ["sequence", "step"] if kind == "both" else resolve_kinds(cfg, kind, say)
    kinds, skipped = check_supported(cfg, wanted, fmt, mode, kind)
    if fmt == "rocket":  # nothing to calibrate: the input grid came with training, and the counts are integers
        out_dir = Path(out) if out else model_dir
        check_output_dir(out_dir)
        if needs_data:
            check_training_data(cfg, data, model_dir)
        from ..train.rocket import quantize_rocket

        return [quantize_rocket(model_dir, cfg, mode, out_dir)]
    if not_made is not None:
        not_made += skipped  # the caller reports them (cli/quantize.result_lines)
    else:
        for line in skipped:
            say(f"note: {line}; writing the {' and '.join(kinds)} model only")
    recipe = load_recipe(calibration) if (mode in CALIBRATED or fmt == "onnx" and mode == "int8") else None
    out_dir = Path(out) if out else model_dir
    check_output_dir(out_dir)
    # every check before any work: a calibration NPZ's windows, then the training data the recipe or the
    # report needs (its path as config.json records it, or --data)
    # (there and unchanged since training: config.json records its SHA-256)
    X = calibration_windows(cfg, recipe) if recipe is not None and recipe.npz else None
    from_training_data = recipe is not None and not recipe.npz and not recipe.data
    if recipe is not None and recipe.data and not Path(recipe.data).exists():
        raise InputError(f"{recipe.data}: no such file or directory (the data of {recipe.source})")
    if needs_data or from_training_data:
        check_training_data(cfg, data, model_dir)
    if from_training_data and data is not None:
        recipe.data = str(data)
    written = []
    with tempfile.TemporaryDirectory(prefix="edgelstm-calib-") as tmp:
        if recipe is not None:
            if X is None:
                X = calibration_windows(cfg, recipe)
            say(f"calibration: {len(X)} windows from {recipe.source}")
        for k in kinds:
            npz = None
            if X is not None:
                npz = str(Path(tmp) / f"{k}.npz")
                if k == "step":
                    from ..models.modeldir import load_keras
                    from ..models.step import build_step_model

                    _, model = load_keras(model_dir)
                    say(f"stepping the float step model over {len(X)} windows for state ranges")
                    step = build_step_model(cfg, model)
                    samples = step_samples(step, X, recipe.step_samples, recipe.seed)
                    if mode == "int8":  # TFLite and ONNX QDQ alike (docs/metadata.md: quantized state)
                        from ..models.step import scale_cell_state

                        samples.update(scale_cell_state(step, samples))
                else:
                    samples = {"x": X}
                np.savez(npz, **samples)
            # the recipe's file name, not its path: a model file carries no path of the machine that made it
            extra = {"io": io, "calibration": Path(recipe.source).name if recipe else None}
            written.append(export_one(model_dir, out_dir, k, fmt, mode, npz, extra, progress))
    return written


def quantize_with_report(
    model_dir,
    mode=None,
    calibration="default",
    target=None,
    kind=None,
    fmt=None,
    io=None,
    out=None,
    report=True,
    progress=None,
    data=None,
) -> QuantizeResult:
    """What `edgelstm quantize` does: target defaults, quantize, report, target check."""
    model_dir = Path(model_dir)
    if fmt is None and (model_dir / "config.json").is_file():
        from ..models.modeldir import load_config

        fmt = "rocket" if load_config(model_dir).arch == "rocket" else None  # a rocket model's one form
    tgt = None
    if target:
        from ..targets.profile import load_target

        tgt = load_target(target)
        if mode is None and tgt.quantization == "float":
            raise InputError(
                f"target {tgt.name} prefers float models: export them with `edgelstm convert`, "
                f"or pass --mode ({', '.join(m for m in tgt.modes if m != 'float')})"
            )
        mode = mode or tgt.quantization
        kind = kind or tgt.kind
        fmt = fmt or tgt.format
        io = io or tgt.io
        tgt.check_mode(mode, fmt)
    mode, kind, fmt, io = mode or "int8", kind or "step", fmt or "tflite", io or "float"
    notes = []
    if report and (model_dir / "config.json").is_file():
        from ..data.prepare import trained_on_all
        from ..models.modeldir import load_config

        if trained_on_all(load_config(model_dir)):  # rebuilding a split would score data the model trained on
            report = False
            notes.append(
                "no report: the model trained on all of its data (cross-validated or tuned, no --test file); "
                "its held-out figures are the folds' in metrics.json"
            )
    # report: it reads the held-out split, so its data must be there before anything is written
    not_made: list[str] = []
    files = quantize(model_dir, mode, calibration, kind, fmt, out, io, progress, data, report, not_made)
    notes += [n for p in files if (n := size_note(p, mode))]
    result = QuantizeResult(files=files, mode=mode, notes=notes, not_made=not_made)
    if report:
        from ..evaluate.report import build_report, write_report

        out_dir = Path(out) if out else model_dir
        # every model file beside the new ones is scored too (the float .tflite from convert, other modes)
        rep = build_report(model_dir, files, str(data) if data else None, progress=progress, beside=out_dir)
        result.report_path = write_report(rep, out_dir)
        result.report = rep
        result.warnings = [w for e in rep["models"] if e["new"] for w in fidelity_warnings(e, mode)]
    if tgt is not None:
        from ..targets.check import check_model_full

        result.target = tgt.name
        result.checks = [TargetCheck(p, *check_model_full(p, tgt)) for p in files]
    return result


def size_note(path: Path, mode: str) -> str | None:
    """Say when a full-integer .tflite or QDQ .onnx is not smaller than the float file beside it (from `convert`).

    Below ~12 units this is the format, not a fault: int8 saves 3 bytes per weight, while every quantized tensor
    carries its scale and zero point (~36 B in a .tflite) and float I/O adds a QUANTIZE/DEQUANTIZE per input and
    output; ONNX's QDQ form adds a QuantizeLinear/DequantizeLinear node pair per quantized tensor (~70 B after
    onnxquant.compact; ~280 B before, which made a 32-unit LSTM's step file 1.02x its float one)."""
    if mode not in CALIBRATED or path.suffix not in (".tflite", ".onnx"):
        return None
    float_path = path.with_name(path.name.replace(f".{mode}", ""))
    if float_path == path or not float_path.is_file():
        return None
    size, float_size = path.stat().st_size, float_path.stat().st_size
    if size < float_size:
        return None
    why = (
        "ONNX's QDQ form adds a QuantizeLinear/DequantizeLinear pair and a scale and zero point per quantized "
        "tensor (~70 B), more than int8 saves on small matmuls (3 B per weight)"
        if path.suffix == ".onnx"
        else "a model this small has more quantization parameters (~36 B per tensor) than int8 saves on its "
        "weights (3 B each; full-integer files win from ~12 units)"
    )
    return (
        f"note: {path.name} ({size:,} B) is not smaller than the float {float_path.name} ({float_size:,} B): {why}. "
        "Keep it for an int8-only target such as the Edge TPU; elsewhere the float file is smaller"
    )


def fidelity_warnings(entry: dict, mode: str) -> list[str]:
    """Say when a quantized model no longer makes the float model's decisions, and what to try (int16x8 keeps
    activations and the recurrent state in 16 bits: an LSTM whose decisions hinge on small cell-state differences
    loses windows under 8-bit rounding at every step)."""
    v = entry["vs_reference"]
    agree, drop = v.get("argmax_agreement"), entry.get("accuracy_drop")
    why = []
    if agree is not None and agree < MIN_AGREEMENT:
        why.append(f"agrees with the float model on {agree:.1%} of windows (< {MIN_AGREEMENT:.0%})")
    if drop is not None and drop > MAX_ACCURACY_DROP:
        why.append(f"loses {drop:.1%} accuracy (> {MAX_ACCURACY_DROP:.0%})")
    if not why:
        return []
    hint = (
        "; try --mode int16x8 (16-bit activations and state; LiteRT on CPU runs it, the Edge TPU does not)"
        if mode == "int8"
        else ""
    )
    return [f"warning: {entry['file']} {' and '.join(why)}{hint}"]
