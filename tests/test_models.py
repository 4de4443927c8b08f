"""Every architecture and task builds and trains one epoch on real (tiny) data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import invoke

ARCH_CASES = [
    ("lstm", "classify", []),
    ("gru", "classify", []),
    ("bilstm", "classify", ["--merge", "concat"]),
    ("bilstm", "classify", ["--merge", "sum"]),
    ("lstm", "classify", ["--peephole"]),
    ("lstm", "classify", ["--layers", "2", "--dropout", "0.2", "--clip", "value"]),
    ("gru", "regress", []),
    ("lstm", "forecast", ["--horizon", "3"]),
    ("bilstm", "forecast", []),
]


@pytest.fixture(scope="module")
def regress_csv(tmp_path_factory):
    """Speed from an IMU-like signal: the target is the amplitude of a sine, in noise."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("reg") / "speed.csv"
    lines = ["recording,a,b,speed"]
    for r in range(6):
        amp = rng.uniform(0.5, 2)
        t = np.arange(200)
        a = amp * np.sin(t * 0.3) + rng.normal(scale=0.1, size=200)
        b = rng.normal(size=200)
        lines += [f"r{r},{a[i]:.4f},{b[i]:.4f},{amp:.4f}" for i in range(200)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow  # trains
@pytest.mark.parametrize("arch,task,extra", ARCH_CASES, ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_each_arch_and_task_trains(tmp_path, activity_csv, forecast_csv, regress_csv, arch, task, extra):
    data = {"classify": activity_csv, "regress": regress_csv, "forecast": forecast_csv}[task]
    args = [
        "train",
        data,
        "--arch",
        arch,
        "--task",
        task,
        "--units",
        "8",
        "--window",
        "24",
        "--stride",
        "24",
        "--epochs",
        "1",
        "-o",
        tmp_path / "m",
        *extra,
    ]
    if task == "regress":
        args += ["--target-col", "speed"]
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (cfg["arch"], cfg["task"]) == (arch, task)
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    if task == "classify":
        assert cfg["n_outputs"] == 4 and cfg["labels"] == ["idle", "run", "stairs", "walk"]
        assert 0 <= metrics["test"]["accuracy"] <= 1
        assert np.asarray(metrics["test"]["confusion"]).sum() == metrics["test"]["n"]
    else:
        # recomputed here: the saved model on the held-out split training used, de-normalized by hand
        from edgelstm.data.prepare import load_splits, model_inputs
        from edgelstm.models.modeldir import load_keras

        cfg_, model_ = load_keras(tmp_path / "m")
        test = load_splits(cfg_).test
        out = model_.predict(model_inputs(cfg_, test.X), verbose=0).astype(np.float64)
        units = out * np.asarray(cfg_.target_std) + np.asarray(cfg_.target_mean)
        err = units - np.asarray(test.y, np.float64).reshape(len(test.y), -1)
        assert metrics["test"]["n"] == len(test.y) > 0
        assert metrics["test"]["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-4)
        assert metrics["test"]["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-4)
    if task == "forecast":
        horizon = int(extra[1]) if extra else 1
        assert cfg["n_outputs"] == 2 * horizon and cfg["targets"] == ["load", "temp"]
        assert "rmse_persistence" in metrics["test"]
    assert (tmp_path / "m" / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from edgelstm.models.modeldir import load_keras

    cfg2, model = load_keras(tmp_path / "m")
    layer_types = [type(layer).__name__ for layer in model.layers]
    if arch == "bilstm":
        assert layer_types.count("Bidirectional") == cfg2.layers
        assert model.get_layer("birnn0").merge_mode == cfg["merge"]
    if "--peephole" in extra:
        assert type(model.get_layer("rnn0").cell).__name__ == "PeepholeLSTMCell"
    if "--layers" in extra:
        assert [n for n in ("rnn0", "rnn1") if model.get_layer(n)] == ["rnn0", "rnn1"]


@pytest.mark.slow  # builds and runs Keras layers (TensorFlow)
def test_peephole_cell_uses_cell_state():
    """With zero peephole weights the cell equals a plain LSTM cell; non-zero ones change the output."""
    from edgelstm._deps import keras as _keras
    from edgelstm.models.build import PeepholeLSTMCell

    keras = _keras()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    peep = keras.layers.RNN(PeepholeLSTMCell(4))
    plain = keras.layers.LSTM(4)
    peep(x), plain(x)
    k, r, b, _ = peep.get_weights()
    plain.set_weights([k, r, b])
    np.testing.assert_allclose(peep(x).numpy(), plain(x).numpy(), atol=1e-6)
    peep.set_weights([k, r, b, np.full((3, 4), 0.5, np.float32)])
    assert np.abs(peep(x).numpy() - plain(x).numpy()).max() > 1e-3


def test_regression_metrics_on_a_known_array():
    """RMSE and MAE worked out by hand: errors (1, -1, 3, -3) and (0, 2, 0, -2) per output column."""
    from edgelstm.evaluate.metrics import regression, scores

    y_true = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    y_pred = np.array([[1.0, 1.0], [-1.0, 3.0], [3.0, 1.0], [-3.0, -1.0]])
    m = regression(y_true, y_pred)
    # squared errors: 1, 1, 9, 9 | 0, 4, 0, 4 -> mean 28/8 = 3.5; absolute: 1, 1, 3, 3 | 0, 2, 0, 2 -> 12/8 = 1.5
    assert m["n"] == 4
    assert m["rmse"] == pytest.approx(3.5**0.5)
    assert m["mae"] == pytest.approx(1.5)
    assert m["rmse_per_output"] == pytest.approx([5**0.5, 2**0.5])  # (1+1+9+9)/4 = 5, (0+4+0+4)/4 = 2
    # outputs in normalized units: scores de-normalizes (x * std + mean) before scoring; a perfect model scores 0
    meta = {"task": "regress", "target_normalization": {"mean": [10.0, 0.0], "std": [2.0, 1.0]}}
    normalized = np.array([[0.5, 1.0], [-0.5, 3.0], [1.5, 1.0], [-1.5, -1.0]])  # y_pred / std: y_pred + mean in units
    assert scores(meta, y_true + [10.0, 0.0], normalized)["rmse"] == pytest.approx(3.5**0.5)
    assert scores(meta, y_pred + [10.0, 0.0], normalized)["rmse"] == 0.0
