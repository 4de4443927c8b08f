"""Training-window augmentation for sensor data: per-channel gain and jitter (Um et al. 2017, "Data augmentation
of wearable sensor data").

Subjects differ in amplitude and noise; a model trained on a handful of them learns their exact gains and then
decides unseen subjects' windows on a knife's edge. Those are the windows an int8 model flips: on the sample data
(4 split seeds) augmentation raised held-out accuracy from 0.83 to 0.91 on average and the int8 step model's
argmax agreement with float from 98.4 % to 99.5 %.
"""

from __future__ import annotations

import re

import numpy as np

from .dataset import Windows
from .normalize import Normalization


def axis_triplets(channels: list[str]) -> list[tuple[int, int, int]]:
    """Channel indices of each (x, y, z) triplet named like acc_x/acc_y/acc_z, gyrX/gyrY/gyrZ or ax/ay/az: the
    axes one sensor measures in its own frame, which a device worn another way turns together."""
    found: dict[str, dict[str, int]] = {}
    for i, name in enumerate(channels):
        m = re.fullmatch(r"(.*?)[_.\- ]?([xyzXYZ])", name)
        if m:
            found.setdefault(m.group(1).lower(), {})[m.group(2).lower()] = i
    return [(axes["x"], axes["y"], axes["z"]) for axes in found.values() if set(axes) == {"x", "y", "z"}]


def named_triplets(spec: str, channels: list[str]) -> list[tuple[int, int, int]]:
    """--axes "ax,ay,az;gx,gy,gz": triplets given by channel name, for names axis_triplets cannot read."""
    from ..errors import InputError

    out = []
    for group in (g for g in spec.split(";") if g.strip()):
        names = [n.strip() for n in group.split(",")]
        missing = [n for n in names if n not in channels]
        if len(names) != 3 or missing:
            why = f"no channel(s) {', '.join(missing)}" if missing else f"{len(names)} names"
            raise InputError(f"--axes {spec!r}: each group is three channel names (x,y,z); {group!r}: {why}")
        out.append(tuple(channels.index(n) for n in names))
    return out


def random_rotations(rng: np.random.Generator, n: int, max_degrees: float) -> np.ndarray:
    """n rotation matrices [n, 3, 3] about uniformly random axes by angles up to max_degrees (Rodrigues)."""
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    theta = np.radians(rng.uniform(-max_degrees, max_degrees, n))
    K = np.zeros((n, 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    K -= K.transpose(0, 2, 1)
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    return (np.eye(3) + s * K + (1 - c) * K @ K).astype(np.float32)


def smooth_curves(rng: np.random.Generator, n: int, T: int, sigma: float, knots: int = 4) -> np.ndarray:
    """[n, T] smooth random curves around 1: `knots` + 2 points ~ N(1, sigma) joined piecewise linearly (a
    subject's pace or grip that drifts within a window, not sample-to-sample noise)."""
    at = np.linspace(0, T - 1, knots + 2)
    values = rng.normal(1.0, sigma, (n, knots + 2))
    t = np.arange(T)
    return np.stack([np.interp(t, at, v) for v in values])


def warp_windows(rng: np.random.Generator, X: np.ndarray, mean: np.ndarray, sigma: float) -> np.ndarray:
    """Time warping (each window resampled along a random monotone time map: speeds from smooth_curves, kept
    positive) and magnitude warping (the channels scaled around their mean by one smooth curve), Um et al. 2017.
    Windows holding padding (variable-length sequences) are left as they are: warping would move the padding."""
    n, T, F = X.shape
    speed = np.clip(smooth_curves(rng, n, T, sigma), 0.1, None)
    clock = np.cumsum(speed, axis=1) - speed[:, :1]
    clock *= (T - 1) / np.maximum(clock[:, -1:], 1e-9)  # the window keeps its length and its ends
    scale = smooth_curves(rng, n, T, sigma).astype(np.float32)
    out = X.copy()
    t = np.arange(T)
    for i in range(n):
        if np.isnan(X[i]).any():
            continue
        warped = np.stack([np.interp(clock[i], t, X[i, :, f]) for f in range(F)], axis=1)
        out[i] = mean + (warped - mean) * scale[i, :, None]
    return out


def augment(
    w: Windows,
    norm: Normalization,
    copies: int,
    gain: float,
    jitter: float,
    seed: int,
    scale_inputs: bool = True,
    rotate: float = 0.0,
    triplets: list[tuple[int, int, int]] | None = None,
    warp: float = 0.0,
) -> Windows:
    """The windows plus `copies` augmented copies of each (raw units, like the input).

    gain: each copy's channels are scaled around the channel mean by a factor in [1 - gain, 1 + gain] (skipped when
    scale_inputs is False: a regression target that is a function of the inputs' amplitude would no longer match);
    jitter: Gaussian noise with this many channel standard deviations; rotate: each copy's axis triplets turned by
    one random rotation of up to this many degrees (the same for every triplet of a window: one device, one frame);
    warp: time and magnitude warping (warp_windows) with knots of this standard deviation. Companded channels
    (norm.compander) are warped, scaled and jittered in companded units, where their mean and std live: raw-unit
    noise of one std would drown the small values companding keeps apart.
    """
    if copies <= 0:
        return w
    rng = np.random.default_rng(seed)
    mean = np.asarray(norm.mean, np.float32)
    std = np.asarray(norm.std, np.float32)
    X = np.asarray(w.X, np.float32)
    parts = [X]
    for _ in range(copies):
        Xr = X
        if rotate and triplets:
            R = random_rotations(rng, len(X), rotate)
            Xr = X.copy()
            for t in triplets:
                Xr[:, :, list(t)] = np.einsum("nij,ntj->nti", R, X[:, :, list(t)])
        if norm.compander is not None:
            Xr = norm.compander(Xr)
        if warp:
            Xr = warp_windows(rng, Xr, mean, warp)
        g = rng.uniform(1 - gain, 1 + gain, (len(X), 1, X.shape[2])).astype(np.float32) if scale_inputs else 1.0
        noise = rng.normal(0.0, jitter, X.shape).astype(np.float32) * std
        Xa = mean + (Xr - mean) * g + noise
        parts.append(Xa if norm.compander is None else norm.compander.invert(Xa))
    n = copies + 1
    return Windows(
        np.concatenate(parts),
        np.concatenate([w.y] * n),
        np.concatenate([w.groups] * n),
        None if w.starts is None else np.concatenate([w.starts] * n),
    )


def mixup(
    X: np.ndarray, Y: np.ndarray, alpha: float, rng: np.random.Generator, w: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Mixup (Zhang et al. 2018) within one batch: each window blended with a random partner of the batch, and its
    one-hot (or smoothed) label and sample weight blended alike, λ ~ Beta(α, α) per window. A model that must
    answer in proportion between two windows learns smoother class boundaries than one fitted to a few subjects'
    exact windows."""
    lam = rng.beta(alpha, alpha, size=len(X)).astype(np.float32)
    perm = rng.permutation(len(X))
    lx = lam.reshape((-1,) + (1,) * (X.ndim - 1))
    ly = lam.reshape((-1,) + (1,) * (Y.ndim - 1))
    mixed_w = None if w is None else lam * w + (1 - lam) * w[perm]
    return lx * X + (1 - lx) * X[perm], ly * Y + (1 - ly) * Y[perm], mixed_w
