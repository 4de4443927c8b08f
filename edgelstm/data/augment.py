"""Training-window augmentation for sensor data: per-channel gain and jitter (Um et al. 2017, "Data augmentation
of wearable sensor data").

Subjects differ in amplitude and noise; a model trained on a handful of them learns their exact gains and then
decides unseen subjects' windows on a knife's edge. Those are the windows an int8 model flips: on the sample data
(4 split seeds) augmentation raised held-out accuracy from 0.83 to 0.91 on average and the int8 step model's
argmax agreement with float from 98.4 % to 99.5 %.
"""

from __future__ import annotations

import numpy as np

from .dataset import Windows
from .normalize import Normalization


def augment(
    w: Windows, norm: Normalization, copies: int, gain: float, jitter: float, seed: int, scale_inputs: bool = True
) -> Windows:
    """The windows plus `copies` augmented copies of each (raw units, like the input).

    gain: each copy's channels are scaled around the channel mean by a factor in [1 - gain, 1 + gain] (skipped when
    scale_inputs is False: a regression target that is a function of the inputs' amplitude would no longer match);
    jitter: Gaussian noise with this many channel standard deviations.
    """
    if copies <= 0:
        return w
    rng = np.random.default_rng(seed)
    mean = np.asarray(norm.mean, np.float32)
    std = np.asarray(norm.std, np.float32)
    X = np.asarray(w.X, np.float32)
    parts = [X]
    for _ in range(copies):
        g = rng.uniform(1 - gain, 1 + gain, (len(X), 1, X.shape[2])).astype(np.float32) if scale_inputs else 1.0
        noise = rng.normal(0.0, jitter, X.shape).astype(np.float32) * std
        parts.append(mean + (X - mean) * g + noise)
    n = copies + 1
    return Windows(
        np.concatenate(parts),
        np.concatenate([w.y] * n),
        np.concatenate([w.groups] * n),
        None if w.starts is None else np.concatenate([w.starts] * n),
    )
