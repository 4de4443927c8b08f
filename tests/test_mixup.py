"""Mixup (`train --mixup A`): training windows blended in pairs within each batch, labels and sample weights alike."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgelstm.data.augment import mixup
from edgelstm.errors import InputError
from edgelstm.train.fit import TrainOptions


def test_each_window_and_its_label_are_blended_with_the_same_weight():
    # window i holds the value i everywhere and is class i: a blend's value must equal its label's expectation
    N = 8
    X = np.broadcast_to(np.arange(N, dtype=np.float32)[:, None, None], (N, 5, 3)).copy()
    Y = np.eye(N, dtype=np.float32)
    w = np.arange(N, dtype=np.float32) + 1
    before = X.copy()
    xm, ym, wm = mixup(X, Y, 0.4, np.random.default_rng(3), w)
    assert np.array_equal(X, before)  # the caller's batch is not changed
    assert np.allclose(ym.sum(axis=1), 1.0) and (ym >= 0).all()
    implied = ym @ np.arange(N, dtype=np.float32)
    assert np.allclose(xm, implied[:, None, None], atol=1e-5)  # every step and channel of a window alike
    assert np.allclose(wm, ym @ w, atol=1e-5)
    assert not np.allclose(xm, X)  # something was blended


def test_a_small_alpha_keeps_most_windows_nearly_whole():
    X = np.random.default_rng(0).normal(size=(400, 4, 2)).astype(np.float32)
    Y = np.eye(400, dtype=np.float32)  # every window its own class: a label's largest share is max(λ, 1 − λ)
    _, ym, wm = mixup(X, Y, 0.05, np.random.default_rng(1))
    assert wm is None
    assert np.mean(ym.max(axis=1) > 0.95) > 0.7  # Beta(0.05, 0.05) puts λ near 0 or 1
    _, ym, _ = mixup(X, Y, 4.0, np.random.default_rng(1))
    assert np.mean(ym.max(axis=1) > 0.95) < 0.2  # Beta(4, 4) near 1/2


@pytest.mark.parametrize(
    "opts, message",
    [
        (dict(mixup=-0.1), r"--mixup must be in \[0, 10\]"),
        (dict(mixup=11.0), r"--mixup must be in \[0, 10\]"),
        (dict(mixup=0.2, task="regress"), r"--mixup applies to classification: it blends class labels"),
    ],
)
def test_bad_mixup_options_are_refused_by_message(opts, message):
    with pytest.raises(InputError, match=message):
        TrainOptions(window=20, stride=10, frame=1, **opts).check()


def test_distill_refuses_mixup():
    from edgelstm.train.distill import DistillOptions

    with pytest.raises(InputError, match="distill does not take --mixup"):
        DistillOptions(mixup=0.2).check()


def test_variable_length_sequences_refuse_mixup_before_training(tmp_path):
    from conftest import invoke
    from test_varlen import varlen_npz

    data, _ = varlen_npz(tmp_path / "v.npz")
    r = invoke("train", data, "--mixup", "0.2", "--epochs", "1", "-o", tmp_path / "m")
    assert r.exit_code == 2, r.output
    assert "--mixup blends two windows step by step; sequences of different lengths have no common" in r.output
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_mixup_trains_a_model_that_holds_the_bar_and_its_int8_agreement(tmp_path, activity_csv):
    """The demo's LSTM 32 with --mixup 0.2 on the sample data: held-out accuracy ≥ 0.9, recorded in config.json,
    and its int8 step model keeps ≥ 99 % argmax agreement with Keras."""
    from conftest import train_and_quantize

    m, export = train_and_quantize(tmp_path, activity_csv, ["--units", "32", "--mixup", "0.2"], ["--mode", "int8"])
    assert json.loads((m / "config.json").read_text())["training"]["mixup"] == 0.2
    metrics = json.loads((m / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9, metrics["test"]
    rep = json.loads((export / "report.json").read_text())
    (q,) = [e for e in rep["models"] if e["file"] == "step.int8.tflite"]
    assert q["vs_reference"]["argmax_agreement"] >= 0.99, q
