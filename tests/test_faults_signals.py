"""issue 12 point 5: SIGINT/SIGTERM to the CLI's own pid (not its process group) during a real conversion: the
converter worker is killed and reaped, and no temporary file is left ($TMPDIR jobs and calibration, .partial)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    """Running (a zombie does not count: it can write nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    "command,sig,code",
    [("convert", signal.SIGINT, 1), ("quantize", signal.SIGTERM, 128 + signal.SIGTERM)],
    ids=["convert-SIGINT", "quantize-SIGTERM"],
)
def test_signal_to_the_cli_stops_the_worker_and_leaves_nothing(tmp_path, tiny_model_dir, command, sig, code):
    m = tmp_path / "m"
    shutil.copytree(tiny_model_dir(arch="lstm", layers=1), m)
    before = sorted(p.name for p in m.iterdir())
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    args = [sys.executable, "-m", "edgelstm", command, str(m)]
    if command == "quantize":
        np.savez(tmp_path / "cal.npz", X=np.random.default_rng(0).normal(0, 1, (8, 20, 3)).astype(np.float32))
        args += ["--mode", "int8", "--kind", "step", "--calibration", str(tmp_path / "cal.npz"), "--no-report"]
    p = subprocess.Popen(args, env={**os.environ, "TMPDIR": str(tmpdir)}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while not workers and time.monotonic() < deadline and p.poll() is None:
        workers = children(p.pid)
        time.sleep(0.05)
    assert workers, "the converter worker never started"
    while not any(tmpdir.iterdir()) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert any(tmpdir.iterdir())  # the job (and calibration) files exist now
    # the worker is importing TensorFlow / converting; a whole tiny conversion has ended within a second here (CI)
    time.sleep(0.3)
    os.kill(p.pid, sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode == code, err
    assert "Traceback" not in err
    gone = time.monotonic() + 2
    while any(alive(w) for w in workers) and time.monotonic() < gone:
        time.sleep(0.05)
    assert not any(alive(w) for w in workers), "the worker outlived the CLI"
    assert list(tmpdir.iterdir()) == []
    assert sorted(p.name for p in m.iterdir()) == before
