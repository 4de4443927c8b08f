"""Every float export validates itself (as optimum's `validate_model_outputs` does): before the file is renamed
into place, the written bytes run through the device's runner on windows and are compared with the Keras model.

Windows: seeded normal samples in the training data's units (mean ± std per channel, from config.json), so the
check needs no data — `convert` works on a model directory moved away from its data — and a converter that
changed the function shows on any input. Quantized files are judged on the real held-out windows by the accuracy
report instead (export/quantize.py: argmax agreement and accuracy drop, a warning below the bars), not twice.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..errors import ConversionError

WINDOWS = 8
# max |Δ| allowed between a float export and Keras: atol + rtol·|Keras output|. Measured on the test fixtures and
# random-weight models (LSTM, GRU, peephole, BiLSTM, CRNN; step and sequence; TFLite and ONNX): ≤ 1.1e-6;
# a converter or weight error is orders above it (one weight off by 0.05: ~1e-2)
ATOL, RTOL = 1e-4, 1e-4


def validation_windows(cfg, n: int = WINDOWS, seed: int = 0) -> np.ndarray:
    """Raw windows [n, window, F] drawn around the training data's statistics."""
    rng = np.random.default_rng(seed)
    mean = np.asarray(cfg.norm_mean, np.float32)
    std = np.asarray(cfg.norm_std, np.float32)
    return (mean + std * rng.standard_normal((n, cfg.window, cfg.n_features))).astype(np.float32)


def keras_outputs(cfg, model, X: np.ndarray) -> np.ndarray:
    """The Keras model's raw outputs on raw windows (normalized as in training)."""
    from ..data.prepare import model_inputs

    # a direct call, not predict(): predict builds a graph and its loop first (0.3-3.5 s measured; this: ~0.05 s)
    return np.asarray(model(model_inputs(cfg, X), training=False), np.float32)


def file_outputs(blob: bytes, suffix: str, X: np.ndarray) -> np.ndarray:
    """The written file's raw outputs on raw windows, through the device runner (its one step engine)."""
    from ..runtime import Runner

    with tempfile.TemporaryDirectory(prefix="edgelstm-validate-") as tmp:
        path = Path(tmp) / f"model{suffix}"
        path.write_bytes(blob)
        runner = Runner()
        runner.open(path)
        return np.asarray(runner.run_windows(X), np.float32)


def check_float_export(name: str, blob: bytes, suffix: str, X: np.ndarray, reference: np.ndarray) -> float:
    """Refuse a float export whose outputs differ from Keras beyond the tolerance; return the max |Δ|."""
    out = file_outputs(blob, suffix, X)
    if out.shape != reference.shape or not np.isfinite(out).all():
        raise ConversionError(
            f"{name}: the written model does not reproduce the Keras model (outputs of shape {list(out.shape)}, "
            f"{int((~np.isfinite(out)).sum())} non-finite; Keras: {list(reference.shape)}); nothing was written"
        )
    delta = np.abs(out - reference)
    worst = float(delta.max()) if delta.size else 0.0
    if (delta > ATOL + RTOL * np.abs(reference)).any():
        raise ConversionError(
            f"{name}: the written model does not reproduce the Keras model: max |Δ| {worst:.3g} on {len(X)} "
            f"validation windows (tolerance {ATOL:g} + {RTOL:g}·|output|); nothing was written"
        )
    return worst
