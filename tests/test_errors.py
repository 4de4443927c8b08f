"""One error family, in one module: every exception class lives in errors.py, and the CLI shows each as one line."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

from conftest import invoke, one_line_error

import edgelstm.errors as errors

PKG = Path(__file__).resolve().parents[1] / "edgelstm"
EXCEPTION_NAMES = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
EXCEPTION_NAMES |= {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, BaseException)}


def exception_classes_outside_errors() -> list[str]:
    found = []
    for path in PKG.rglob("*.py"):
        if path == PKG / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if bases & (EXCEPTION_NAMES | {"ClickException"}):
                    found.append(f"{path.relative_to(PKG)} {node.name}")
    return found


def test_every_exception_class_lives_in_errors_py():
    # cli.UserError is Click's own carrier of an EdgeLSTMError to the terminal, not an error of the library
    assert exception_classes_outside_errors() == ["cli/__init__.py UserError"]


def test_exit_codes_are_distinct_per_family():
    assert errors.InputError.exit_code == errors.ModelDirError.exit_code == 2
    assert errors.DeployError.exit_code == 1
    assert errors.ConverterCrash.exit_code == 3 and issubclass(errors.ConverterCrash, errors.ConversionError)


def test_a_bad_model_config_is_an_input_error_not_a_value_error(activity_csv, tmp_path):
    r = invoke("train", activity_csv, "--arch", "gru", "--peephole", "--epochs", "1", "-o", tmp_path / "m")
    assert one_line_error(r) == "Error: --peephole applies to LSTM cells, not GRU"
    assert not (tmp_path / "m").exists()
