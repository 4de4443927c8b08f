"""A rocket model on the device: MiniRocket's fixed dilated kernels over a 16-bit input grid, the share of steps where
each response crosses each of its thresholds (proportion of positive values, PPV), and a linear head over those.

Why not a TFLite graph: the shares are running means over the whole sequence, which int8 state cannot carry step by
step (an increment under half a step of the state's scale is lost), and an int8 graph's own rounding moves responses
across thresholds: a TFLite step model of these features (the head's mean kept outside) agreed with its float model
on 30-43 % of ACSF1's test series, and thresholds softened until int8 followed them (89-94 %) cost 15-23 points of
float accuracy (2026-12-07). Here everything up to the head is exact integer arithmetic on the grid, so the float
and int8 forms count the same crossings; int8 stores the head's weights as int8, a scale per class.

The state (the last 8·max(dilation) grid samples, the crossing counts, the step count) lives inside the
interpreter, which the engine resets like a fused TFLite LSTM's variables. stdlib + numpy only: the file is an .npz
read with allow_pickle=False, its metadata a JSON byte array (never unpickled).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from .interpreter import Interpreter, Tensor

TAPS = 9
# MiniRocket's 84 kernels: three taps of weight 2, six of -1. Each sums to 0, so the grid's offset cancels and a
# constant input responds 0.
KERNELS = np.array(
    [[2 if k in c else -1 for k in range(TAPS)] for c in itertools.combinations(range(TAPS), 3)], np.float32
)
# The input grid: 16 bits per channel (ACSF1 0.860 with 8 bits, 0.880 with 16, 3 seeds, int8; docs/accuracy.md).
# A response is at most 12·65535 in magnitude, a whole number under 2^24: exact in float32. Files from before it
# were 8-bit; their grid has no 4th entry (`grid_levels`).
LEVELS = 65536
ARRAYS = ("meta", "dilations", "skip", "grid", "thresholds", "mu", "weights", "scale", "bias", "temperature")


def dilations(window: int, most: int = 16) -> list[int]:
    """Up to `most` dilations spaced exponentially from 1 to the largest whose 9 taps fit in the window."""
    top = np.log2(max(1.0, (window - 1) / (TAPS - 1)))
    return sorted({int(v) for v in np.floor(2 ** np.linspace(0, top, most))})


def thresholds_per_response(aim: int, n_dilations: int, n_features: int) -> int:
    """Thresholds on each (dilation, channel, kernel) response for a model of about `aim` shares, at least 1."""
    return max(1, round(aim / (n_dilations * n_features * len(KERNELS))))


def n_shares(window: int, n_features: int, aim: int) -> int:
    """How many shares a model of about `aim` over windows of `window` samples has (its size before training)."""
    D = len(dilations(window))
    return D * n_features * len(KERNELS) * thresholds_per_response(aim, D, n_features)


def grid_levels(grid: np.ndarray) -> int:
    """How many levels a grid (lo, step, pad, levels) has; 256 in files written before the 4th entry."""
    return int(grid[3]) if len(grid) > 3 else 256


def to_grid(Z: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Normalized samples → whole levels of the grid (lo, step, pad, levels), as float32 (exact sums)."""
    q = np.rint((np.asarray(Z, np.float32) - grid[0]) / grid[1])
    return np.clip(q, 0, grid_levels(grid) - 1).astype(np.float32)


def taps_back(d: int) -> list[int]:
    """How many steps back each of a kernel's taps reads at dilation d, oldest first (the last is the sample)."""
    return [(TAPS - 1 - k) * d for k in range(TAPS)]


def responses(q: np.ndarray, dil: list[int], pad: float) -> np.ndarray:
    """One sequence's levels [T, F] → every kernel's response at every step [T, D, F, 84]. Causal: taps before the
    first sample read `pad` (the level of a normalized 0), as a fresh interpreter's buffer does. The step from there
    to a short sequence's first samples carries much of its class (JapaneseVowels 0.986 against 0.881 when the
    history repeats the first sample instead; PLAID 0.942 against 0.888; docs/accuracy.md)."""
    T, F = q.shape
    R = (TAPS - 1) * max(dil)
    x = np.concatenate([np.full((R, F), pad, np.float32), q.astype(np.float32)])
    out = np.empty((T, len(dil), F, len(KERNELS)), np.float32)
    for i, d in enumerate(dil):
        taps = np.stack([x[R - b : R - b + T] for b in taps_back(d)], axis=-1)
        out[:, i] = taps @ KERNELS.T  # whole numbers under 2^24: exact in float32 in any order
    return out


def skips(dil: list[int], whole: bool) -> np.ndarray:
    """Steps not counted at the start of a sequence, per dilation: none for a sequence counted whole (an event
    whose start is part of it), 8·d for a fixed window cut from a longer signal, whose history the window does not
    hold: a step reaching back before the window would see the pad level, and how far that is from the signal there
    (a patient's ECG baseline) would fill the shares (MIT-BIH 100→101: 0.415 counting every step, 0.988 not)."""
    return np.array([0 if whole else (TAPS - 1) * d for d in dil], np.int32)


def share_of(counts: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Counts [D, ...] over n[d] counted steps → shares, flat [N] (0 where a dilation has counted none yet)."""
    n = np.asarray(n).reshape(-1, *([1] * (counts.ndim - 1)))
    return np.where(n > 0, counts / np.maximum(n, 1).astype(np.float32), 0).astype(np.float32).reshape(-1)


def shares(q: np.ndarray, dil: list[int], pad: float, thresholds: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """One sequence's levels [T, F] → for each response and threshold, the share of its counted steps (all but the
    first skip[d]) where the response exceeds the threshold [N]."""
    hit = responses(q, dil, pad)[..., None] > thresholds  # [T, D, F, 84, B]
    counts = np.stack([hit[s:, i].sum(axis=0, dtype=np.int32) for i, s in enumerate(skip)])
    return share_of(counts, len(q) - np.asarray(skip))


def head(f: np.ndarray, a: dict) -> np.ndarray:
    """Shares [B, N] → class probabilities [B, K]: a linear head over the centred shares, softmax at the fitted
    temperature. int8 weights carry a scale per class."""
    logits = ((f - a["mu"]) @ a["weights"].astype(np.float32)) * a["scale"] + a["bias"]
    logits = logits * a["temperature"]
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def read_rocket(path: str | Path) -> tuple[dict, dict]:
    """(metadata, arrays) of a .rocket file; never unpickles (allow_pickle=False)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as ex:
        raise ModelFileError(f"{path}: not a readable .rocket model ({str(ex).splitlines()[0]})") from None
    missing = [k for k in ARRAYS if k not in a]
    if missing:
        raise ModelFileError(f"{path}: a .rocket model lacks {', '.join(missing)}")
    try:
        meta = json.loads(a.pop("meta").tobytes().decode())
    except (json.JSONDecodeError, UnicodeDecodeError) as ex:
        raise ModelFileError(f"{path}: the rocket model's metadata is not valid JSON ({ex})") from None
    a["dilations"] = [int(d) for d in a["dilations"]]
    return meta, a


def write_rocket(path: str | Path, meta: dict, arrays: dict) -> None:
    """Arrays (ARRAYS but meta) and the metadata dict → a .rocket file (an .npz, no object arrays)."""
    data = {k: np.asarray(arrays[k]) for k in ARRAYS if k != "meta"}
    data["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **data)


class RocketInterpreter(Interpreter):
    """A .rocket file behind the Interpreter API: input x [1, F] (normalized), output y [1, K] (probabilities after
    every step so far). `reset()` starts a new sequence."""

    backend = "numpy"

    def __init__(self, path: str | Path) -> None:
        self.meta, a = read_rocket(path)
        self.a = a
        F = int(a["thresholds"].shape[1])
        K = int(a["bias"].shape[0])
        self.inputs = {"x": Tensor("x", "x", (1, F), np.dtype(np.float32))}
        self.outputs = {"y": Tensor("y", "y", (1, K), np.dtype(np.float32))}
        R = (TAPS - 1) * max(a["dilations"])
        self._idx = np.array([[R - b for b in taps_back(d)] for d in a["dilations"]])  # rows, newest last
        self._buf = np.empty((R + 1, F), np.float32)
        self._counts = np.zeros(a["thresholds"].shape, np.int32)
        self._x = np.zeros(F, np.float32)
        self.reset()

    def set(self, name: str, value: np.ndarray) -> None:
        self._x = np.asarray(value, np.float32).reshape(-1)

    def invoke(self) -> None:
        buf = self._buf
        buf[:-1] = buf[1:]
        buf[-1] = to_grid(self._x, self.a["grid"])
        c = buf[self._idx].transpose(0, 2, 1) @ KERNELS.T  # [D, F, 84], as `responses` computes it
        live = self._n >= self.a["skip"]  # the dilations whose taps all lie in the sequence by now
        self._counts[live] += (c[..., None] > self.a["thresholds"])[live]
        self._n += 1
        self._y = head(share_of(self._counts, self._n - self.a["skip"])[None], self.a)

    def get(self, name: str) -> np.ndarray:
        return self._y

    def reset(self) -> None:
        self._buf.fill(self.a["grid"][2])
        self._counts.fill(0)
        self._n = 0
        self._y = np.full((1, len(self.a["bias"])), 1.0 / len(self.a["bias"]), np.float32)
