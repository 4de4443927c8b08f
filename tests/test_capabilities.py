"""The capabilities table: its answers, the README's copy of it, and that quantize refuses a "no" before any work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import invoke, one_line_error

from edgelstm.capabilities import MODES, Mode, support_table, table_arch, why_not

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_support_table_is_the_generated_one():
    text = README.read_text()
    m = re.search(r"<!-- capabilities:begin -->\n(.*?)\n<!-- capabilities:end -->", text, re.S)
    assert m, "README.md lacks the capabilities block"
    assert m.group(1) == support_table()


def test_modes_are_defined_once_as_an_enum():
    assert MODES == ("float", "int8", "int16x8", "dynamic", "float16")
    assert [m for m in Mode if m.calibrated] == [Mode.INT8, Mode.INT16X8]
    assert Mode("int8") == "int8"


@pytest.mark.parametrize(
    "combo, expect",
    [
        (dict(arch="gru", kind="sequence", format="tflite", mode="int8"), "segfaults on WHILE"),
        (dict(arch="peephole", kind="sequence", format="tflite", mode="int16x8"), "segfaults on WHILE"),
        (dict(arch="lstm", kind="sequence", format="tflite", mode="int16x8"), "UNIDIRECTIONAL_SEQUENCE_LSTM to 16x8"),
        (dict(arch="bilstm-stacked", kind="step"), "has no step model"),
        (dict(format="onnx", mode="float16"), "static QDQ int8 or dynamic only"),
        (dict(format="tflite", mode="dynamic", runtime="tflite-runtime"), "FULLY_CONNECTED version 12"),
        (
            dict(arch="lstm", kind="step", format="tflite", mode="float", runtime="edgetpu"),
            "full-integer int8 models only",
        ),
        (dict(arch="gru", kind="sequence", format="tflite", mode="int8", runtime="edgetpu"), "segfaults on WHILE"),
    ],
)
def test_unsupported_combinations_say_why(combo, expect):
    assert expect in why_not(**combo)


@pytest.mark.parametrize(
    "combo",
    [
        dict(arch="lstm", kind="sequence", format="tflite", mode="int8"),
        dict(arch="bilstm", kind="sequence", format="tflite", mode="int8"),
        dict(arch="gru", kind="step", format="tflite", mode="int8", runtime="edgetpu"),
        dict(arch="gru", kind="step", format="onnx", mode="int8", runtime="onnxruntime"),
        dict(format="tflite", mode="dynamic"),  # makeable; only tflite-runtime cannot load it
    ],
)
def test_supported_combinations_have_no_reason(combo):
    assert why_not(**combo) is None


def test_table_arch_tells_peephole_and_stacked_bilstm_apart():
    assert table_arch("lstm", 2, True) == "peephole"
    assert table_arch("bilstm", 2) == "bilstm-stacked"
    assert table_arch("bilstm", 1) == "bilstm" and table_arch("gru", 3) == "gru"


@pytest.mark.slow
def test_quantize_refuses_gru_sequence_int8_before_any_work(tiny_model_dir, tmp_path):
    """The converter would segfault; the table says so first, and nothing is written (not even the folder)."""
    out = tmp_path / "out"
    r = invoke("quantize", tiny_model_dir(arch="gru", layers=1), "--kind", "sequence", "--mode", "int8", "-o", out)
    assert one_line_error(r) == (
        "Error: cannot make the int8 sequence model of this gru as tflite: the sequence "
        "model is a WHILE loop, and the TF converter's int8 calibrator segfaults on WHILE; "
        "the step model quantizes fully"
    )
    assert "calibrating" not in r.output and not out.exists()
