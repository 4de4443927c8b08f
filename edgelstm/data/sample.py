"""Deterministic sample data, so the demo and the tests need no downloads.

`activity`: a 6-axis IMU (accelerometer m/s², gyroscope rad/s) at 50 Hz, one recording per subject and activity.
The classes differ in cadence, intensity and harmonic shape, and each subject has their own cadence, amplitude,
sensor orientation and noise: learnable, but only from the temporal pattern, not from a single sample.
`forecast`: a two-channel series (load, temperature) with daily and weekly cycles, a slow trend and AR(1) noise.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

ACTIVITIES = ("idle", "walk", "run", "stairs")
IMU_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
RATE_HZ = 50.0

# activity: (cadence range Hz, acceleration amplitude, gyro amplitude, 2nd-harmonic weight)
_PROFILE = {
    "idle": ((0.15, 0.35), 0.15, 0.05, 0.0),
    "walk": ((1.75, 2.15), 2.0, 0.9, 0.25),
    "run": ((2.6, 3.2), 5.0, 2.0, 0.2),
    "stairs": ((1.25, 1.6), 2.4, 1.3, 0.9),
}


def _rotation(rng: np.random.Generator, max_angle: float) -> np.ndarray:
    """A random rotation of at most `max_angle` radians: how a phone sits differently in each pocket."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    a = rng.uniform(0, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def activity_recording(activity: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """One recording [n, 6] of one subject doing one activity."""
    (f_lo, f_hi), acc_amp, gyr_amp, harm = _PROFILE[activity]
    n = int(seconds * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    subject_scale = rng.uniform(0.8, 1.2)
    f0 = rng.uniform(f_lo, f_hi)
    drift = 1 + 0.03 * np.sin(2 * np.pi * t / rng.uniform(6, 12) + rng.uniform(0, 6.3))
    phase = 2 * np.pi * np.cumsum(f0 * drift) / RATE_HZ + rng.uniform(0, 2 * np.pi)
    a = acc_amp * subject_scale
    g = gyr_amp * subject_scale
    acc = np.stack(
        [
            0.35 * a * np.sin(phase + 0.7),
            0.25 * a * np.sin(0.5 * phase),  # sway at half the step rate (left/right)
            a * (np.sin(phase) + harm * np.sin(2 * phase + 1.1)),
        ],
        axis=1,
    )
    gyr = np.stack(
        [
            g * np.sin(phase + 1.4),
            0.5 * g * np.sin(0.5 * phase + 0.3) + harm * 0.6 * g * np.sin(2 * phase),
            0.3 * g * np.cos(phase),
        ],
        axis=1,
    )
    acc[:, 2] += 9.81
    rot = _rotation(rng, 0.5)
    acc = acc @ rot.T
    gyr = gyr @ rot.T
    noise = rng.uniform(0.15, 0.35)
    acc += rng.normal(scale=noise, size=acc.shape)
    gyr += rng.normal(scale=noise * 0.3, size=gyr.shape)
    return np.concatenate([acc, gyr], axis=1).astype(np.float32)


def make_activity(subjects: int = 10, seconds: float = 20.0, seed: int = 0) -> list[tuple[str, str, np.ndarray]]:
    """[(recording id, activity, samples [n, 6])], one per subject and activity."""
    rng = np.random.default_rng(seed)
    out = []
    for s in range(subjects):
        for act in ACTIVITIES:
            out.append((f"s{s:02d}_{act}", act, activity_recording(act, seconds, rng)))
    return out


def write_activity_csv(path: str | Path, subjects: int = 10, seconds: float = 20.0, seed: int = 0) -> Path:
    """CSV with one row per sample: recording, time, six channels, label."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["recording", "time", *IMU_CHANNELS, "label"])
        for rec, act, x in make_activity(subjects, seconds, seed):
            for i, row in enumerate(x):
                w.writerow([rec, f"{i / RATE_HZ:.2f}", *(f"{v:.4f}" for v in row), act])
    return path


def make_forecast(hours: int = 24 * 60, seed: int = 0) -> np.ndarray:
    """[hours, 2]: load (kW) and outdoor temperature (°C), hourly."""
    rng = np.random.default_rng(seed)
    t = np.arange(hours, dtype=np.float64)
    day = 2 * np.pi * t / 24
    week = 2 * np.pi * t / (24 * 7)
    temp = 12 + 6 * np.sin(day - 2.0) + 3 * np.sin(2 * np.pi * t / (24 * 90))
    ar = np.zeros(hours)
    for i in range(1, hours):
        ar[i] = 0.8 * ar[i - 1] + rng.normal(scale=0.6)
    temp = temp + ar
    weekday = (np.sin(week) > -0.6).astype(np.float64)
    load = 20 + 8 * np.clip(np.sin(day - 1.3), 0, None) * (0.6 + 0.4 * weekday) + 0.4 * np.abs(temp - 15)
    load += rng.normal(scale=0.5, size=hours) + 0.002 * t
    return np.stack([load, temp], axis=1).astype(np.float32)


def write_forecast_csv(path: str | Path, hours: int = 24 * 60, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = make_forecast(hours, seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time", "load", "temp"])
        for i, (a, b) in enumerate(x):
            w.writerow([i * 3600, f"{a:.3f}", f"{b:.3f}"])
    return path
