"""Deterministic sample data, so the demo and the tests need no downloads.

`activity`: a 6-axis IMU (accelerometer m/s², gyroscope rad/s) at 50 Hz, one recording (session) per subject, in
which the subject does all four activities in bouts of a few seconds with gradual transitions between them, as
real recordings are: so a split by recording is a split by subject, and the held-out accuracy is for unseen
subjects. Made as hard as real data (issue 13): subjects differ in gain, sensor offset, tempo, gait shape and how
the phone sits (orientation, and a new posture per idle bout); the sensors add white noise, a gyroscope bias that
drifts as a random walk and a slow accelerometer drift; classes are imbalanced (idle 35 %, walk 30 %, stairs 20 %,
run 15 % of the time), walk and stairs overlap in cadence and amplitude, and windows across a transition carry the
majority label. An LSTM 32 reaches ~0.8-0.9 on unseen subjects, not 1.0.
`forecast`: a two-channel series (load, temperature) with daily and weekly cycles, a slow trend and AR(1) noise.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

ACTIVITIES = ("idle", "walk", "run", "stairs")
IMU_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
RATE_HZ = 50.0

# activity: (cadence range Hz, acceleration amplitude, gyro amplitude, 2nd-harmonic weight, share of the time)
_PROFILE = {
    "idle": ((0.15, 0.35), 0.15, 0.05, 0.0, 0.35),
    "walk": ((1.65, 2.1), 2.0, 0.9, 0.25, 0.30),
    "run": ((2.3, 2.9), 4.2, 1.8, 0.25, 0.15),
    "stairs": ((1.3, 1.7), 2.4, 1.3, 0.8, 0.20),
}
TRANSITION_S = (0.6, 1.6)  # a cross-fade between bouts; the label changes at its middle
BOUT_S = (3.0, 8.0)


def _rotation(rng: np.random.Generator, max_angle: float) -> np.ndarray:
    """A random rotation of at most `max_angle` radians: how a phone sits differently in each pocket."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    a = rng.uniform(0, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


class _Subject:
    """What makes one person (and their phone) differ from the next."""

    def __init__(self, rng: np.random.Generator):
        self.gain = rng.uniform(0.7, 1.35)  # how hard they move
        self.gyr_gain = self.gain * rng.uniform(0.8, 1.25)
        self.tempo = rng.uniform(0.88, 1.12)  # cadence factor
        self.harm = rng.uniform(-0.15, 0.15)  # gait shape: how pronounced the second harmonic is
        self.rot = _rotation(rng, 0.8)  # phone orientation in the pocket (up to ~46°)
        self.acc_bias = rng.normal(scale=0.3, size=3)  # accelerometer offset, m/s²
        self.gyr_bias = rng.normal(scale=0.04, size=3)  # gyroscope offset, rad/s
        self.noise = rng.uniform(0.2, 0.5)


def _bout(activity: str, n: int, subj: _Subject, rng: np.random.Generator) -> np.ndarray:
    """The body-frame signal [n, 6] of one bout (before orientation, bias, drift and noise)."""
    (f_lo, f_hi), acc_amp, gyr_amp, harm, _ = _PROFILE[activity]
    t = np.arange(n) / RATE_HZ
    f0 = rng.uniform(f_lo, f_hi) * subj.tempo
    wobble = 1 + 0.04 * np.sin(2 * np.pi * t / rng.uniform(4, 9) + rng.uniform(0, 6.3))
    phase = 2 * np.pi * np.cumsum(f0 * wobble) / RATE_HZ + rng.uniform(0, 2 * np.pi)
    a = acc_amp * subj.gain * rng.uniform(0.85, 1.15)
    g = gyr_amp * subj.gyr_gain * rng.uniform(0.85, 1.15)
    h = max(0.0, harm + subj.harm) if activity != "idle" else 0.0
    acc = np.stack(
        [
            0.35 * a * np.sin(phase + 0.7),
            0.25 * a * np.sin(0.5 * phase),  # sway at half the step rate (left/right)
            a * (np.sin(phase) + h * np.sin(2 * phase + 1.1)),
        ],
        axis=1,
    )
    gyr = np.stack(
        [
            g * np.sin(phase + 1.4),
            0.5 * g * np.sin(0.5 * phase + 0.3) + h * 0.6 * g * np.sin(2 * phase),
            0.3 * g * np.cos(phase),
        ],
        axis=1,
    )
    grav = np.array([0.0, 0.0, 9.81])
    if activity == "idle":  # a posture of its own (sitting, standing, leaning) and now and then a fidget
        grav = _rotation(rng, 0.6) @ grav
        for _ in range(rng.poisson(n / (6 * RATE_HZ))):
            c, w = rng.integers(0, n), rng.uniform(0.2, 0.6) * RATE_HZ
            bump = np.exp(-0.5 * ((np.arange(n) - c) / w) ** 2)[:, None]
            acc += bump * rng.normal(scale=0.8, size=3)
            gyr += bump * rng.normal(scale=0.4, size=3)
    acc += grav
    return np.concatenate([acc, gyr], axis=1)


def _plan(seconds: float, rng: np.random.Generator) -> list[tuple[str, int]]:
    """The session's bouts [(activity, samples)]: every activity, about 4 × `seconds` in all, split by share of
    the time into bouts of 3-8 s in random order, never the same activity twice in a row."""
    bouts = []
    for act, (*_, share) in _PROFILE.items():
        total = 4 * seconds * share * rng.uniform(0.75, 1.25)
        k = max(1, int(round(total / rng.uniform(*BOUT_S))))
        bouts += [(act, int(total / k * RATE_HZ))] * k
    order = [int(i) for i in rng.permutation(len(bouts))]
    out: list[tuple[str, int]] = []
    while order:  # the first bout in the remaining order that differs from the last one placed
        i = next((j for j in order if not out or bouts[j][0] != out[-1][0]), order[0])
        order.remove(i)
        if out and bouts[i][0] == out[-1][0]:
            out[-1] = (out[-1][0], out[-1][1] + bouts[i][1])
        else:
            out.append(bouts[i])
    return out


def activity_session(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One subject's session: (samples [n, 6] float32, labels [n]) — bouts of all four activities, cross-faded."""
    subj = _Subject(rng)
    plan = _plan(seconds, rng)
    n = sum(k for _, k in plan)
    body = np.zeros((n, 6))
    labels = np.empty(n, dtype=object)
    start = 0
    for i, (act, k) in enumerate(plan):
        fade = int(rng.uniform(*TRANSITION_S) * RATE_HZ) if i else 0
        lo = max(0, start - fade // 2)  # the bout starts half a fade early, fading in over the previous one
        sig = _bout(act, start + k - lo, subj, rng)
        w = np.ones(len(sig))
        if fade:
            w[:fade] = np.linspace(0, 1, fade, endpoint=False)
        body[lo : start + k] = body[lo : start + k] * (1 - w[:, None]) + sig * w[:, None]
        labels[start : start + k] = act
        start += k
    acc = body[:, :3] @ subj.rot.T + subj.acc_bias
    gyr = body[:, 3:] @ subj.rot.T + subj.gyr_bias
    t = np.arange(n) / RATE_HZ
    acc += 0.15 * np.sin(2 * np.pi * t / rng.uniform(20, 60) + rng.uniform(0, 6.3))[:, None] * rng.normal(size=3)
    gyr += np.cumsum(rng.normal(scale=0.0015, size=(n, 3)), axis=0)  # gyroscope bias random walk
    acc += rng.normal(scale=subj.noise, size=acc.shape)
    gyr += rng.normal(scale=subj.noise * 0.3, size=gyr.shape)
    return np.concatenate([acc, gyr], axis=1).astype(np.float32), labels.astype(str)


def make_activity(subjects: int = 20, seconds: float = 10.0, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """[(recording id, labels [n], samples [n, 6])]: one session per subject, about 4 × `seconds` long."""
    rng = np.random.default_rng(seed)
    out = []
    for s in range(subjects):
        x, y = activity_session(seconds, rng)
        out.append((f"s{s:02d}", y, x))
    return out


def write_activity_csv(
    path: str | Path, subjects: int | None = None, seconds: float | None = None, seed: int = 0, hard: bool = True
) -> Path:
    """CSV with one row per sample: recording, time, six channels, label. `hard=False`: the old easy data (one
    recording per subject and activity, held-out accuracy 1.0), kept only for the test fixtures whose thresholds
    were verified on it (tests/conftest.py says why); `edgelstm sample` and the demo write the hard data."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if hard:
        recs = make_activity(subjects or 20, seconds or 10.0, seed)
    else:
        recs = [(r, np.full(len(x), a), x) for r, a, x in make_activity_easy(subjects or 10, seconds or 20.0, seed)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["recording", "time", *IMU_CHANNELS, "label"])
        for rec, labels, x in recs:
            for i, (row, act) in enumerate(zip(x, labels)):
                w.writerow([rec, f"{i / RATE_HZ:.2f}", *(f"{v:.4f}" for v in row), act])
    return path


# ---- the easy data before issue 13, for the test fixtures only (write_activity_csv(hard=False)) ------------------
_EASY_PROFILE = {
    "idle": ((0.15, 0.35), 0.15, 0.05, 0.0),
    "walk": ((1.75, 2.15), 2.0, 0.9, 0.25),
    "run": ((2.6, 3.2), 5.0, 2.0, 0.2),
    "stairs": ((1.25, 1.6), 2.4, 1.3, 0.9),
}


def _easy_recording(activity: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """One recording [n, 6] of one subject doing one activity (the easy data)."""
    (f_lo, f_hi), acc_amp, gyr_amp, harm = _EASY_PROFILE[activity]
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
            0.25 * a * np.sin(0.5 * phase),
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


def make_activity_easy(subjects: int = 10, seconds: float = 20.0, seed: int = 0) -> list[tuple[str, str, np.ndarray]]:
    """[(recording id, activity, samples [n, 6])], one per subject and activity: the easy data."""
    rng = np.random.default_rng(seed)
    return [(f"s{s:02d}_{act}", act, _easy_recording(act, seconds, rng)) for s in range(subjects) for act in ACTIVITIES]


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
