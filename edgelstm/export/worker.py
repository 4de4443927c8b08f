"""The conversion subprocess: `python -m edgelstm.export.worker JOB.json`.

The TF converter and its calibrator can segfault on recurrent graphs (docs/design.md); in a child process a crash
becomes an error message in the parent (export/isolated.py) instead of killing the CLI. Protocol on stdout, one line
each: `PROGRESS text`, then `RESULT {json}` or `ERROR {json}`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ABORT_ENV = "EDGELSTM_TEST_ABORT_CONVERTER"  # test hook: the child aborts like a crashing converter
# test hook: this much is added to the first weight after the Keras reference is taken, so the written file (made
# from the perturbed weights) really differs from the model — what export/validate.py must catch
PERTURB_ENV = "EDGELSTM_TEST_PERTURB_WEIGHT"


def progress(msg: str) -> None:
    print(f"PROGRESS {msg}", flush=True)


def representative(npz: str, names: list[str], limit: int | None = None):
    """Representative dataset for the converter: yields dicts keyed by signature input name (a list would be
    matched to inputs alphabetically: docs/design.md)."""
    import numpy as np

    data = np.load(npz)
    samples = {n: data[n] for n in names}
    n = len(next(iter(samples.values())))
    if limit:
        n = min(n, limit)

    def gen():
        step = max(1, n // 10)
        for i in range(n):
            if i % step == 0:
                progress(f"calibrating {i}/{n}")
            yield {k: v[i : i + 1].astype(np.float32) for k, v in samples.items()}
        progress(f"calibrating {n}/{n}")

    return gen


def run(job: dict) -> dict:
    from ..models.modeldir import load_keras
    from ..models.step import build_step_model

    if os.environ.get(ABORT_ENV):
        os.abort()
    cfg, model = load_keras(job["model_dir"])
    kind, to, quant = job["kind"], job["to"], job.get("quantization", "float")
    extra = job.get("extra", {})
    X = reference = None
    if quant == "float":  # the Keras reference the written file must reproduce (export/validate.py)
        from .validate import keras_outputs, validation_windows

        X = validation_windows(cfg)
        reference = keras_outputs(cfg, model, X)
    if os.environ.get(PERTURB_ENV):
        weights = model.get_weights()
        weights[0].flat[0] += float(os.environ[PERTURB_ENV])
        model.set_weights(weights)
    step = build_step_model(cfg, model) if kind == "step" else None
    rep = None
    if job.get("calibration"):
        rep = representative(job["calibration"], step.input_names if step else ["x"])
        if step is not None:  # the int8 LSTM cell-state scales the calibration samples were made with
            import numpy as np

            from ..models.step import apply_cell_scales

            with np.load(job["calibration"]) as z:
                apply_cell_scales(step, {k: z[k] for k in z.files if k.startswith("cscale_")})
    progress(f"converting the {kind} model to {to} ({quant})")
    if to == "tflite":
        from .compact import compact_tflite
        from .tflite import sequence_tflite, step_tflite

        if kind == "step":
            blob = step_tflite(step, quant, rep, **extra)
        else:
            blob = sequence_tflite(cfg, model, quant, rep, **extra)
        blob = compact_tflite(blob)
    else:
        from .onnx import sequence_onnx, step_onnx

        if kind == "step":
            blob = step_onnx(step, quantization="float", **extra)
        else:
            blob = sequence_onnx(cfg, model, quantization="float", **extra)
        if quant != "float":
            from .onnxquant import quantize_onnx

            blob = quantize_onnx(blob, quant, rep, job["out"])
    result = {"bytes": len(blob)}
    if reference is not None:
        from .validate import check_float_export

        name = f"{job['model_dir']}: {Path(job['out']).name.split('.partial-')[0].lstrip('.')}"
        result["max_abs_delta"] = delta = check_float_export(name, blob, f".{to}", X, reference)
        progress(f"{name}: reproduces the Keras model on {len(X)} validation windows (max |Δ| {delta:.2g})")
    Path(job["out"]).write_bytes(blob)
    return result


def exit_with_parent(poll: float = 0.5) -> None:
    """End this worker when the process that started it is gone (killed with SIGKILL, say): its own process
    group keeps it from the parent's signals, so nothing else would stop it writing a file nobody wants."""
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="edgelstm-parent-watch").start()


def main() -> None:
    exit_with_parent()
    job = json.loads(Path(sys.argv[1]).read_text())
    from ..errors import EdgeLSTMError

    try:
        result = run(job)
    except EdgeLSTMError as ex:
        print("ERROR " + json.dumps({"message": str(ex), "exit_code": ex.exit_code}), flush=True)
        sys.exit(3)
    except Exception as ex:  # the converter raises many types; the parent shows one line
        from .._deps import missing_extra

        missing = missing_extra(ex)
        if missing is not None:  # an optional module a step needs: name its extra
            print("ERROR " + json.dumps({"message": str(missing), "exit_code": missing.exit_code}), flush=True)
            sys.exit(3)
        lines = [ln for ln in str(ex).strip().splitlines() if ln.strip()]
        msg = f"{type(ex).__name__}: {lines[-1] if lines else ''}"
        print("ERROR " + json.dumps({"message": msg, "exit_code": None}), flush=True)
        sys.exit(3)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
