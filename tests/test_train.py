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
    assert {"model.keras", "config.json", "metrics.json", "history.json",
            "training_curves.png", "confusion.png"} <= names
    cfg = json.loads((lstm_model / "config.json").read_text())
    assert cfg["format"] == "edgelstm-model" and cfg["window"] == 100 and cfg["stride"] == 50
    assert cfg["channels"] == ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
    assert cfg["sample_rate"] == 50.0
    assert len(cfg["norm_mean"]) == 6 and min(cfg["norm_std"]) > 0
    assert abs(cfg["norm_mean"][2] - 9.81) < 1.5  # gravity sits mostly on z


def test_stored_normalization_reproduces_metrics(lstm_model, activity_csv):
    """Reloading the model dir and normalizing with the stored stats gives the stored held-out accuracy."""
    from edgelstm.data import ColumnSpec, load
    from edgelstm.modeldir import load_keras
    from edgelstm.prepare import prepare, score
    from edgelstm.train import predict

    cfg, model = load_keras(lstm_model)
    prep = prepare(load(activity_csv, ColumnSpec()), cfg.window, cfg.stride, cfg.task, seed=0)
    np.testing.assert_allclose(prep.norm.mean, cfg.norm_mean, rtol=1e-6)
    m = score(cfg, prep.test, predict(model, cfg, prep.test.X))
    stored = json.loads((lstm_model / "metrics.json").read_text())["test"]
    assert m["accuracy"] == stored["accuracy"]
    assert m["confusion"] == stored["confusion"]
