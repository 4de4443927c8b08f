"""What is supported where, as data: quantization modes defined once, and one table of what cannot be made or run.

A combination is (arch, kind, format, mode, runtime). `RULES` lists every combination that does not work, each with
the one-line reason measured on this toolchain (docs/design.md); anything no rule matches is supported. convert,
quantize, check and deploy ask `why_not`, and the README's support table is generated from `support_table`
(tests/test_capabilities.py keeps the two equal). stdlib only: the device side reads it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    """Quantization modes, as stored in the metadata and named on the command line."""

    FLOAT = "float"
    INT8 = "int8"  # full integer, calibrated
    INT16X8 = "int16x8"  # 16-bit activations and state, 8-bit weights, calibrated
    DYNAMIC = "dynamic"  # int8 weights, float activations
    FLOAT16 = "float16"  # float16 weights

    @property
    def calibrated(self) -> bool:
        return self in (Mode.INT8, Mode.INT16X8)


MODES = tuple(m.value for m in Mode)
QUANTIZED = tuple(m.value for m in Mode if m is not Mode.FLOAT)
CALIBRATED = tuple(m.value for m in Mode if m.calibrated)
ONNX_MODES = (Mode.INT8.value, Mode.DYNAMIC.value)  # ONNX Runtime's quantizers: static QDQ, dynamic

# arch as the table sees it: a model config's arch, with a peephole LSTM and a stacked BiLSTM told apart
ARCHS = (
    "lstm",
    "peephole",
    "gru",
    "bilstm",
    "bilstm-stacked",
    "conv-lstm",
    "conv-peephole",
    "conv-gru",
    "conv-bilstm",
    "rocket",
)
RECURRENT = ARCHS[:-1]
KINDS = ("step", "sequence")
FORMATS = ("tflite", "onnx", "rocket")
RUNTIMES = ("litert", "tflite-runtime", "onnxruntime", "edgetpu", "tflite-micro", "numpy")
ROCKET_MODES = (Mode.FLOAT.value, Mode.INT8.value)  # float head weights, or int8 per class

ANY = "*"


@dataclass(frozen=True)
class Rule:
    """A set of combinations that does not work: each field is a value, a tuple of values, or ANY."""

    arch: str | tuple[str, ...]
    kind: str | tuple[str, ...]
    format: str | tuple[str, ...]
    mode: str | tuple[str, ...]
    runtime: str | tuple[str, ...]
    why: str
    length: str | tuple[str, ...] = ANY  # "fixed" windows, or "variable"-length sequences (masked padding)
    head: str | tuple[str, ...] = ANY  # what the output layer sees: "last" output, running "max" or "maxconv" (--pool)
    inputs: str | tuple[str, ...] = ANY  # the raw channels' map: "linear", "compand" or "quantile" (--input-map)
    steps: str | tuple[str, ...] = ANY  # one "sample" per step, or a "frame" of samples (--frame)

    def matches(self, **combo: str | None) -> bool:
        """A field the rule constrains must be given and be one of the rule's: asking whether a model can be made
        (no runtime named) is not answered by a rule about one runtime."""
        for key, value in combo.items():
            want = getattr(self, key)
            if want == ANY:
                continue
            if value is None or value not in (want if isinstance(want, tuple) else (want,)):
                return False
        return True


RULES: tuple[Rule, ...] = (
    Rule(
        "rocket",
        ANY,
        ("tflite", "onnx", "c"),
        ANY,
        ANY,
        "a rocket model's shares are running means over the whole sequence, which int8 graph state cannot carry, and "
        "its thresholds need exact responses (an int8 TFLite step model agreed with float on 30-43 % of ACSF1's "
        "series); it is a .rocket file for edgelstm's numpy runtime",
    ),
    Rule(
        "rocket",
        "sequence",
        ANY,
        ANY,
        ANY,
        "a rocket model steps sample by sample, counting as it goes: its .rocket file is its step model, and there "
        "is no sequence model",
    ),
    Rule(RECURRENT, ANY, "rocket", ANY, ANY, "only --arch rocket has a .rocket form"),
    Rule(
        "rocket",
        ANY,
        "rocket",
        ("int16x8", "dynamic", "float16"),
        ANY,
        "a .rocket model's head weights are float or int8 (its input grid and counts are integers in both)",
    ),
    Rule(
        ANY,
        ANY,
        "rocket",
        ANY,
        ("litert", "tflite-runtime", "onnxruntime", "edgetpu", "tflite-micro"),
        "a .rocket model runs on numpy (edgelstm's runtime), not in a TFLite or ONNX interpreter",
    ),
    Rule(ANY, ANY, ("tflite", "onnx"), ANY, "numpy", "the numpy runtime reads .rocket models only"),
    Rule(
        ("bilstm", "bilstm-stacked"),
        ANY,
        ANY,
        ANY,
        ANY,
        "--pool max streams a running max over causal steps; a BiLSTM's backward direction is not causal (use "
        "--pool last)",
        head=("max", "maxconv"),
    ),
    Rule(
        ("lstm", "peephole", "gru", "bilstm", "bilstm-stacked"),
        ANY,
        ANY,
        ANY,
        ANY,
        "--pool maxconv pools a convolutional front-end's features as well; without --conv there are none (use "
        "--pool max)",
        head="maxconv",
    ),
    Rule(
        "conv-bilstm",
        ANY,
        ANY,
        ANY,
        ANY,
        "a convolutional front-end is causal, for streaming models; a BiLSTM's backward direction would need one "
        "of its own over the reversed window",
    ),
    Rule(
        ("bilstm", "bilstm-stacked"),
        ANY,
        ANY,
        ANY,
        ANY,
        "a BiLSTM over variable-length sequences needs each direction's padding masked apart; not supported yet",
        length="variable",
    ),
    Rule(
        ANY,
        "sequence",
        ANY,
        ANY,
        ANY,
        "a variable-length model's sequence model would need its padding mask at run time; the step model steps "
        "each sequence over its own samples",
        length="variable",
    ),
    Rule(
        "bilstm-stacked",
        "step",
        ANY,
        ANY,
        ANY,
        "a stacked BiLSTM has no step model: its second layer needs the whole first-layer sequence in both "
        "directions; use the sequence model (its windowed runner)",
    ),
    Rule(ANY, ANY, "onnx", ("int16x8", "float16"), ANY, "ONNX Runtime quantizes to static QDQ int8 or dynamic only"),
    Rule(
        ("gru", "peephole", "conv-gru", "conv-peephole"),
        "sequence",
        "tflite",
        ("int8", "int16x8"),
        ANY,
        "the sequence model is a WHILE loop, and the TF converter's int8 calibrator segfaults on WHILE; "
        "the step model quantizes fully",
    ),
    Rule(
        ("lstm", "bilstm", "bilstm-stacked", "conv-lstm"),
        "sequence",
        "tflite",
        "int16x8",
        ANY,
        "the TF converter does not quantize UNIDIRECTIONAL_SEQUENCE_LSTM to 16x8; the step model does",
    ),
    Rule(ANY, ANY, "onnx", ANY, ("litert", "tflite-runtime", "edgetpu"), "a TFLite interpreter cannot read .onnx"),
    Rule(ANY, ANY, "tflite", ANY, "onnxruntime", "ONNX Runtime cannot read .tflite"),
    Rule(
        ANY,
        ANY,
        "tflite",
        "dynamic",
        "tflite-runtime",
        "tflite-runtime 2.14 cannot load dynamic-range models (FULLY_CONNECTED version 12)",
    ),
    Rule(
        ANY,
        "sequence",
        ANY,
        ANY,
        "edgetpu",
        "the Edge TPU has no WHILE, REVERSE_V2 or sequence LSTM op; deploy the int8 step model",
    ),
    Rule(
        ANY,
        ANY,
        ANY,
        ("float", "int16x8", "dynamic", "float16"),
        "edgetpu",
        "the Edge TPU runs full-integer int8 models only",
    ),
)


# The C export (`convert --to c`) is written from the step model: rules for format "c" (not in FORMATS, so not in the
# README's conversion table; `convert --to c` asks why_not(arch, "step", "c", mode)).
C_MODES = (Mode.FLOAT.value, Mode.INT8.value)
C_RULES: tuple[Rule, ...] = (
    Rule(
        ANY,
        ANY,
        "c",
        ANY,
        ANY,
        "the C export steps one sample at a time; a frame model (--frame) has no C form yet",
        steps="frame",
    ),
    Rule(
        ANY,
        ANY,
        "c",
        ANY,
        ANY,
        "the C export writes cells and a last-state head; a max-pooled head (--pool max) has no C form yet (use "
        "--to c-array and TFLite Micro)",
        head=("max", "maxconv"),
    ),
    Rule(
        ANY,
        ANY,
        "c",
        ANY,
        ANY,
        "the C export folds a linear normalization into its step; companded (heavy-tailed) channels have no C form yet",
        inputs="compand",
    ),
    Rule(
        ANY,
        ANY,
        "c",
        ANY,
        ANY,
        "the C export folds a linear normalization into its step; a quantile input map has no C form yet",
        inputs="quantile",
    ),
    Rule(
        ANY,
        ANY,
        "c",
        ("int16x8", "dynamic", "float16"),
        ANY,
        "the C export has a float and an int8 hot path only (--mode float|int8)",
    ),
    Rule(
        ANY,
        ANY,
        "c",
        ANY,
        ANY,
        "the C export streams fixed-length input; a variable-length (masked) model needs its padding skipped by the "
        "caller: not supported yet",
        length="variable",
    ),
    Rule(
        ("conv-lstm", "conv-peephole", "conv-gru", "conv-bilstm"),
        ANY,
        "c",
        ANY,
        ANY,
        "the C export writes cells and a head; a convolutional front-end has no C form yet (use --to c-array and "
        "TFLite Micro)",
    ),
)
RULES = (
    RULES
    + C_RULES
    + (
        Rule(
            ("gru", "peephole"),
            "sequence",
            "tflite",
            ANY,
            "tflite-micro",
            "the sequence model is a WHILE loop, which TFLite Micro lacks; its step model runs there",
        ),
    )
)


def model_length(cfg) -> str:
    """ "variable" for a model trained on variable-length sequences (masked padding), else "fixed"."""
    return "variable" if getattr(cfg, "masked", False) else "fixed"


def table_arch(arch: str, layers: int = 1, peephole: bool = False, conv: bool = False) -> str:
    """A model config's arch as the table names it."""
    if conv:
        return "conv-" + ("peephole" if arch == "lstm" and peephole else arch)
    if arch == "bilstm" and layers > 1:
        return "bilstm-stacked"
    if arch == "lstm" and peephole:
        return "peephole"
    return arch


def shape_why_not(arch: str, layers: int, peephole: bool, conv, pool: str) -> str | None:
    """What RULES say of a model's shape: its cells, front-end and head (ModelConfig refuses it; train's recipes and
    tune's candidates leave it out)."""
    return why_not(table_arch(arch, layers, peephole, bool(conv)), head=pool)


def cfg_arch(cfg) -> str:
    """table_arch of a model config."""
    return table_arch(cfg.arch, cfg.layers, cfg.peephole, bool(getattr(cfg, "conv", None)))


def model_facts(cfg) -> dict[str, str]:
    """What the table asks of a model beyond its arch: length, head, input map and steps, from its config."""
    if any(v > 0 for v in getattr(cfg, "compand_scale", None) or []):
        inputs = "compand"
    else:
        inputs = "quantile" if getattr(cfg, "quantile_knots", None) else "linear"
    return {
        "arch": cfg_arch(cfg),
        "length": model_length(cfg),
        "head": getattr(cfg, "pool", "last"),
        "inputs": inputs,
        "steps": "frame" if getattr(cfg, "frame", 1) > 1 else "sample",
    }


def why_not(
    arch: str | None = None,
    kind: str | None = None,
    format: str | None = None,
    mode: str | None = None,
    runtime: str | None = None,
    length: str | None = None,
    head: str | None = None,
    inputs: str | None = None,
    steps: str | None = None,
) -> str | None:
    """None when the combination is supported, else the first matching rule's reason (fields left None: not asked)."""
    combo = dict(
        arch=arch,
        kind=kind,
        format=format,
        mode=mode,
        runtime=runtime,
        length=length,
        head=head,
        inputs=inputs,
        steps=steps,
    )
    for rule in RULES:
        if rule.matches(**combo):
            return rule.why
    return None


def _mode_names(fmt: str) -> tuple[str, ...]:
    return {"tflite": MODES, "rocket": ROCKET_MODES}.get(fmt, (Mode.FLOAT.value, *ONNX_MODES))


def support_table() -> str:
    """The README's table: for each arch and kind, the modes each format makes (runtime left open)."""
    head = "| arch | kind | " + " | ".join(f"{f} {m}" for f in FORMATS for m in _mode_names(f)) + " |"
    rows = [head, "|" + "---|" * (2 + sum(len(_mode_names(f)) for f in FORMATS))]
    for arch in ARCHS:
        for kind in KINDS:
            cells = ["yes" if why_not(arch, kind, f, m) is None else "no" for f in FORMATS for m in _mode_names(f)]
            rows.append(f"| {arch} | {kind} | " + " | ".join(cells) + " |")
    notes = [f"- {r.why} ({_describe(r)})" for r in RULES]
    return "\n".join(rows) + "\n\nWhy not, rule by rule:\n" + "\n".join(notes)


def _describe(rule: Rule) -> str:
    parts = []
    for key in ("arch", "kind", "format", "mode", "runtime", "length", "head", "inputs", "steps"):
        v = getattr(rule, key)
        if v != ANY:
            parts.append(f"{key} {'/'.join(v) if isinstance(v, tuple) else v}")
    return ", ".join(parts)
