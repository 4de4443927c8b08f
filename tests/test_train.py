from __future__ import annotations

import json

import numpy as np


def test_lstm32_reaches_90_percent_on_sample_data(lstm_model):
    """The acceptance bar of the foundation: 1-layer, 32-unit LSTM, held-out split by recording."""
    metrics = json.loads((lstm_model / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.90, metrics["test"]
    assert metrics["test"]["macro_f1"] >= 0.88
    split = metrics["split"]
    assert not set(split["train"]["recordings"]) & set(split["test"]["recordings"])
    assert not set(split["validation"]["recordings"]) & set(split["test"]["recordings"])


def test_model_dir_contents(lstm_model):
    names = {p.name for p in lstm_model.iterdir()}
    assert {
        "model.keras",
        "config.json",
        "metrics.json",
        "history.json",
        "training_curves.png",
        "confusion.png",
    } <= names
    cfg = json.loads((lstm_model / "config.json").read_text())
    assert cfg["format"] == "edgelstm-model" and cfg["window"] == 100 and cfg["stride"] == 50
    assert cfg["channels"] == ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
    assert cfg["sample_rate"] == 50.0
    assert len(cfg["norm_mean"]) == 6 and min(cfg["norm_std"]) > 0
    assert abs(cfg["norm_mean"][2] - 9.81) < 1.5  # gravity sits mostly on z


def test_stored_normalization_reproduces_metrics(lstm_model, activity_csv):
    """Reloading the model dir and normalizing with the stored stats gives the stored held-out accuracy."""
    from edgelstm.data.dataset import ColumnSpec, load
    from edgelstm.data.prepare import prepare
    from edgelstm.evaluate.metrics import score
    from edgelstm.models.modeldir import load_keras
    from edgelstm.train.fit import predict

    cfg, model = load_keras(lstm_model)
    prep = prepare(load(activity_csv, ColumnSpec()), cfg.window, cfg.stride, cfg.task, seed=0)
    np.testing.assert_allclose(prep.norm.mean, cfg.norm_mean, rtol=1e-6)
    m = score(cfg, prep.test, predict(model, cfg, prep.test.X))
    stored = json.loads((lstm_model / "metrics.json").read_text())["test"]
    assert m["accuracy"] == stored["accuracy"]
    assert m["confusion"] == stored["confusion"]


def test_augment_adds_gain_and_jitter_copies_of_training_windows_only():
    from edgelstm.data.augment import augment
    from edgelstm.data.dataset import Windows
    from edgelstm.data.normalize import Normalization

    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 2.0, (10, 30, 3)).astype(np.float32)
    w = Windows(X, np.arange(10), np.array([f"r{i % 2}" for i in range(10)]))
    norm = Normalization.fit(X)
    out = augment(w, norm, copies=2, gain=0.2, jitter=0.0, seed=1)
    assert out.X.shape == (30, 30, 3) and list(out.y) == list(range(10)) * 3
    assert list(out.groups[10:20]) == list(w.groups)
    np.testing.assert_array_equal(out.X[:10], X)
    ratio = (out.X[10:20] - norm.mean) / (X - norm.mean)  # one gain per window and channel, around the mean
    np.testing.assert_allclose(ratio, ratio[:, :1, :].repeat(30, axis=1), rtol=1e-3, atol=1e-3)
    assert 0.8 <= ratio.min() and ratio.max() <= 1.2 and ratio.std() > 0.05
    noisy = augment(w, norm, copies=1, gain=0.0, jitter=0.5, seed=1)
    d = (noisy.X[10:] - X) / norm.std
    assert abs(d.std() - 0.5) < 0.03 and abs(d.mean()) < 0.03
    assert augment(w, norm, copies=0, gain=0.2, jitter=0.1, seed=1) is w


def test_training_augments_classification_by_default_and_records_it(lstm_model):
    cfg = json.loads((lstm_model / "config.json").read_text())
    assert (cfg["training"]["augment"], cfg["training"]["aug_gain"], cfg["training"]["aug_jitter"]) == (3, 0.2, 0.1)
    split = json.loads((lstm_model / "metrics.json").read_text())["split"]
    assert (split["train"]["windows"], split["test"]["windows"]) == (456, 152)  # the originals: copies are not data
