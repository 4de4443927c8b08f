"""Run one conversion in a subprocess and turn its crash or error into one line naming model, mode and a remedy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConversionError, ConverterCrash


def _remedy(kind: str, quant: str) -> str:
    if kind == "sequence" and quant in ("int8", "int16x8"):
        return "try the step model (--kind step), which quantizes fully, or --mode dynamic"
    if quant in ("int8", "int16x8"):
        return "try --mode dynamic or float16"
    return "try the other kind (--kind step|sequence) or the other format"


def stop(proc: subprocess.Popen) -> None:
    """Kill the worker's whole process group and reap it (a second Ctrl-C meanwhile does not stop the reaping)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    while True:
        try:
            proc.wait()
            break
        except KeyboardInterrupt:
            continue
    if proc.stdout:
        proc.stdout.close()


@contextmanager
def sigterm_as_exit():
    """SIGTERM raises SystemExit(143) here, so `finally` blocks and context managers clean up (Python's default
    SIGTERM ends the process at once). Only in the main thread, and only where SIGTERM still has its default."""
    import threading

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def convert_in_subprocess(job: dict, progress: Callable[[str], None] | None = None) -> dict:
    """Run the worker on `job` (which names its output file) and return its result dict."""
    what = f"{job['model_dir']}: converting the {job['kind']} model to {job['to']} ({job.get('quantization', 'float')})"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="edgelstm-job-") as tmp:
        jobfile = Path(tmp) / "job.json"
        jobfile.write_text(json.dumps(job))
        errfile = Path(tmp) / "stderr.txt"
        with open(errfile, "w") as err:
            # its own process group: a Ctrl-C or kill aimed at us is ours to pass on, and on every way out of
            # this block (an error, SIGINT, SIGTERM as SystemExit) the worker is killed and reaped before the
            # temporary files go — before, it outlived an interrupted CLI and wrote its .partial file afterwards
            proc = subprocess.Popen(
                [sys.executable, "-m", "edgelstm.export.worker", str(jobfile)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
                start_new_session=True,
            )
            try:
                with sigterm_as_exit():
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
            except BaseException:
                stop(proc)
                raise
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
