"""The device runtime in a virtualenv of the wheel with its `device` extra (numpy, ai-edge-litert): no TensorFlow
imported, nor Click (installed as the base dependency, never loaded by the runtime)."""

from __future__ import annotations

import json
import subprocess

import numpy as np


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
