"""issue 12, "every export validates itself": a float export that does not reproduce the Keras model is an error
with nothing written; one that does says by how much (export/validate.py, run inside the conversion worker)."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import invoke


@pytest.mark.slow  # the real TFLite converter, twice
def test_a_float_export_that_differs_from_keras_is_refused_with_nothing_written(tmp_path, tiny_model_dir, monkeypatch):
    """The worker's test hook adds 0.5 to one weight after the Keras reference is taken, so the converter really
    writes a different model (a perturbed step model, converted and run by LiteRT); before, it was kept."""
    m = tmp_path / "m"
    shutil.copytree(tiny_model_dir(arch="lstm", layers=1), m)
    before = sorted(p.name for p in m.iterdir())
    monkeypatch.setenv("EDGELSTM_TEST_PERTURB_WEIGHT", "0.5")
    r = invoke("convert", m, "--kind", "step")
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    err = r.stderr.strip().splitlines()[-1]  # after the progress line "converting the step model …"
    found = re.fullmatch(
        rf"Error: {re.escape(str(m))}: step\.tflite: the written model does not reproduce the Keras model: max \|Δ\| "
        r"(\S+) on 8 validation windows \(tolerance 0\.0001 \+ 0\.0001·\|output\|\); nothing was written",
        err,
    )
    assert found, err
    assert float(found.group(1)) > 1e-3
    assert sorted(p.name for p in m.iterdir()) == before  # no step.tflite, no .partial file

    monkeypatch.delenv("EDGELSTM_TEST_PERTURB_WEIGHT")
    r = invoke("convert", m, "--kind", "step", "--to", "onnx")
    assert r.exit_code == 0, r.output
    found = re.search(r"step\.onnx: reproduces the Keras model on 8 validation windows \(max \|Δ\| (\S+)\)", r.stderr)
    assert found, r.stderr
    assert float(found.group(1)) <= 1e-5  # measured 6e-8 (LSTM, GRU, 2-layer LSTM; TFLite and ONNX)
    assert (m / "step.onnx").is_file()
