"""The device runtime in a virtualenv with numpy, ai-edge-litert and edgelstm only: no TensorFlow, no Click."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def device_python(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("device")
    src = base / "src"  # a copy, so pip's in-tree build leaves the checkout clean
    src.mkdir()
    for d in ("edgelstm", "targets", "calibration"):  # the wheel maps targets/ and calibration/ into the package
        shutil.copytree(ROOT / d, src / d, ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for args in (["numpy<2.5", "ai-edge-litert>=2.3"], ["--no-deps", str(src)]):
        r = subprocess.run(pip + args, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
    return py


def test_runtime_runs_without_tensorflow(device_python, tmp_path, tiny_model):
    from test_runtime import make_step, recording

    from edgelstm.runtime import Runner

    probe = subprocess.run([str(device_python), "-c", "import tensorflow"], capture_output=True, text=True)
    assert "No module named 'tensorflow'" in probe.stderr
    _, _, path = make_step(tiny_model, tmp_path, "lstm", arch="lstm")
    raw = recording(50)
    rec = tmp_path / "rec.csv"
    rec.write_text("ax,ay,az\n" + "".join(",".join(map(str, r)) + "\n" for r in raw.tolist()))
    code = (
        "import runpy, sys\nsys.argv = ['edgelstm.runtime'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('edgelstm.runtime', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'tf_keras', 'click', 'onnxruntime', 'tflite_runtime'))))"
    )
    p = subprocess.run(
        [str(device_python), "-c", "import json\n" + code, str(path), f"file:{rec}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == []  # nothing but numpy and ai-edge-litert was imported
    got = np.array([json.loads(ln)["scores"] for ln in lines[:-1]])
    runner = Runner()
    runner.open(path)
    ref = np.array([r.values for r in runner.stream(raw)])
    assert got.shape == (50, 4) and np.abs(got - ref).max() <= 1e-5
    assert p.stderr.strip().splitlines()[-1] == "edgelstm run: 50 samples, 0 skipped, 50 outputs (source closed)"
