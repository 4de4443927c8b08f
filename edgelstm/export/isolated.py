"""Run one conversion in a subprocess and turn its crash or error into one line naming model, mode and a remedy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import ConversionError, ConverterCrash


def _remedy(kind: str, quant: str) -> str:
    if kind == "sequence" and quant in ("int8", "int16x8"):
        return "try the step model (--kind step), which quantizes fully, or --mode dynamic"
    if quant in ("int8", "int16x8"):
        return "try --mode dynamic or float16"
    return "try the other kind (--kind step|sequence) or the other format"


def convert_in_subprocess(job: dict, progress: Callable[[str], None] | None = None) -> dict:
    """Run the worker on `job` (which names its output file) and return its result dict."""
    what = f"{job['model_dir']}: converting the {job['kind']} model to {job['to']} ({job.get('quantization', 'float')})"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="edgelstm-job-") as tmp:
        jobfile = Path(tmp) / "job.json"
        jobfile.write_text(json.dumps(job))
        errfile = Path(tmp) / "stderr.txt"
        with open(errfile, "w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "edgelstm.export.worker", str(jobfile)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
            )
            result, error = None, None
            for line in proc.stdout:
                kind, _, rest = line.rstrip("\n").partition(" ")
                if kind == "PROGRESS" and progress:
                    progress(rest)
                elif kind == "RESULT":
                    result = json.loads(rest)
                elif kind == "ERROR":
                    error = json.loads(rest)
            rc = proc.wait()
        stderr_tail = [ln for ln in errfile.read_text(errors="replace").splitlines() if ln.strip()][-1:]
    if rc < 0:
        try:
            sig = signal.Signals(-rc).name
        except ValueError:
            sig = f"signal {-rc}"
        raise ConverterCrash(
            f"{what} crashed the converter ({sig}); {_remedy(job['kind'], job.get('quantization', 'float'))}"
        )
    if error is not None:
        raise ConversionError(f"{what} failed: {error['message']}" if error["exit_code"] is None else error["message"])
    if rc != 0 or result is None:
        tail = f": {stderr_tail[0]}" if stderr_tail else ""
        raise ConversionError(f"{what} failed (exit {rc}){tail}")
    return result
