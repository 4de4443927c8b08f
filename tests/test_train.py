from __future__ import annotations

import json

import numpy as np
import pytest


def test_lstm32_reaches_90_percent_on_sample_data(lstm_model):
    """The acceptance bar of the foundation: 1-layer, 32-unit LSTM, held-out split by recording (on the fixture's
    easy data, conftest.activity_csv; the hard data's figures are in the demo: 0.818)."""
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


def test_train_refuses_an_existing_model_dir_naming_overwrite(tmp_path, activity_csv):
    """issue 13.4: a second `train -o` onto a model directory would silently replace what was exported from it."""
    from conftest import invoke, one_line_error

    out = tmp_path / "m"
    out.mkdir()
    (out / "config.json").write_text('{"format": "edgelstm-model"}')
    err = one_line_error(invoke("train", activity_csv, "--epochs", "1", "-o", out))
    assert err == (
        f"Error: {out}: a model directory is already there (files exported from it would no longer match); "
        "pass --overwrite to replace it, or choose another -o"
    )
    assert (out / "config.json").read_text() == '{"format": "edgelstm-model"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging folder left


def test_stopping_line_says_why_training_ended_and_which_epoch_was_kept():
    from edgelstm.train.fit import epoch_kept, stopping_line

    stopped = {"loss": [1.0] * 5, "val_loss": [0.9, 0.5, 0.6, 0.5, 0.7]}
    assert epoch_kept(stopped) == 2  # the first of the two lowest: EarlyStopping keeps the earlier one
    assert stopping_line(stopped, 30, 3) == (
        "early stopping after epoch 5/30: val_loss had not improved for 3 epochs; "
        "kept the weights of epoch 2 (val_loss 0.5000)"
    )
    full = {"val_loss": [0.9, 0.8, 0.85]}
    assert (
        stopping_line(full, 3, 6)
        == "trained all 3 epochs; kept the weights of epoch 2 (val_loss 0.8000), the lowest val_loss"
    )
    assert epoch_kept({}) is None
    # --patience 0 (a classifier's default): no early stopping, the last epoch is kept whatever its val_loss
    assert epoch_kept(full, 0, 0) == 3
    assert stopping_line(full, 3, 0) == (
        "trained all 3 epochs without early stopping; kept the last, epoch 3 (val_loss 0.8500)"
    )


def test_budget_epochs_gives_small_sets_more_epochs_within_bounds():
    """--epochs auto: epochs grow as windows shrink (about STEP_BUDGET steps) within [MIN, MAX]; a given --epochs,
    --min-epochs and the warm-up win over it."""
    from edgelstm.train.fit import MAX_EPOCHS, MIN_EPOCHS, STEP_BUDGET, FitOptions, budget_epochs

    budget = FitOptions(epochs="auto")
    assert budget_epochs(32 * STEP_BUDGET // 100, budget) == 100  # 20 steps per epoch
    assert budget_epochs(40, budget) == MAX_EPOCHS  # BasicMotions' 40 series: 2 steps per epoch
    assert budget_epochs(10**6, budget) == MIN_EPOCHS
    assert budget_epochs(40, FitOptions(epochs=7)) == 7
    assert budget_epochs(10**6, FitOptions(epochs="auto", min_epochs=45)) == 45
    assert budget_epochs(10**6, FitOptions(epochs="auto", warmup=50)) == 51
    default = FitOptions()
    default.check_fit()
    assert budget_epochs(10**6, default) == 30 and default.patience == 6  # the default: 30 epochs, any windows


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_model_dir_mode_honours_the_umask(tmp_path, mask):
    """mkdtemp makes the staging folder 0700; the model directory gets what mkdir would give it."""
    import os

    from edgelstm.models.modeldir import staging, umask

    old = os.umask(mask)
    try:
        assert umask() == mask and umask() == mask  # reading it leaves it as it was
        with staging(tmp_path / "m") as tmp:
            (tmp / "config.json").write_text("{}")
        os.mkdir(tmp_path / "plain")
    finally:
        os.umask(old)
    mode = (tmp_path / "m").stat().st_mode & 0o777
    assert mode == 0o777 & ~mask == (tmp_path / "plain").stat().st_mode & 0o777, oct(mode)


@pytest.mark.slow
def test_train_overwrite_replaces_and_says_which_epoch_was_kept(tmp_path, activity_csv):
    """--overwrite replaces a model directory (its new config.json, old files gone); train says which epoch's
    weights it kept, and metrics.json records the same epoch (the first lowest val_loss of history.json)."""
    from conftest import invoke

    out = tmp_path / "m"
    out.mkdir()
    (out / "config.json").write_text('{"format": "edgelstm-model"}')
    (out / "stale.tflite").write_bytes(b"old")
    r = invoke("train", activity_csv, "--units", "4", "--epochs", "3", "--augment", "0", "--overwrite", "-o", out)
    assert r.exit_code == 0, r.output
    assert not (out / "stale.tflite").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    val_loss = json.loads((out / "history.json").read_text())["val_loss"]
    kept = int(np.argmin(val_loss)) + 1
    assert metrics["epoch_kept"] == kept and metrics["epochs_run"] == len(val_loss)
    line = f"kept the weights of epoch {kept} (val_loss {val_loss[kept - 1]:.4f})"
    assert line in r.stderr, r.stderr


@pytest.mark.slow
def test_epochs_auto_without_early_stopping_trains_the_budget_and_keeps_the_last_epoch(tmp_path):
    """tune's "long" recipe from the CLI: --epochs auto sizes the run to about STEP_BUDGET steps over the training
    windows, --patience 0 runs all of it and keeps the last epoch; metrics.json and the message say so."""
    import math

    from conftest import invoke
    from test_splits import windows_npz

    from edgelstm.train.fit import STEP_BUDGET

    data = windows_npz(tmp_path / "d.npz", n=150, T=4, F=2)
    args = ["--units", "4", "--augment", "0", "--batch-size", "2", "--epochs", "auto", "--patience", "0"]
    r = invoke("train", data, *args, "-o", tmp_path / "m")
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    n = metrics["split"]["train"]["windows"]
    want = max(30, math.ceil(STEP_BUDGET / math.ceil(n / 2)))
    assert 30 <= want < 200 and metrics["epochs_run"] == metrics["epoch_kept"] == want, (n, metrics["epochs_run"])
    assert f"trained all {want} epochs without early stopping; kept the last, epoch {want}" in r.stderr, r.stderr
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["training"]["epochs"] == want and cfg["training"]["patience"] == 0


def test_a_classifier_over_long_series_takes_the_long_series_recipe_unless_told_otherwise():
    """Windows stepped in frames (over LONG_WINDOW samples) fill what the user left unset from LONG_SERIES_RECIPE;
    short windows, regression and every option given keep their values."""
    from edgelstm.train.fit import LONG_SERIES_RECIPE, TrainOptions

    def resolved(**kw) -> TrainOptions:
        o = TrainOptions(window=1452, stride=726, **kw)
        o.check()
        return o

    long = resolved(frame=12)
    assert {k: getattr(long, k) for k in LONG_SERIES_RECIPE} == LONG_SERIES_RECIPE
    assert long.conv is not LONG_SERIES_RECIPE["conv"]  # a copy: options never share the recipe's lists
    short = resolved(frame=1)
    assert (short.epochs, short.patience, short.conv, short.pool, short.input_map) == (30, 6, [], "last", "auto")
    given = resolved(frame=12, epochs=10, patience=3, conv=[], pool="last", input_map="linear")
    assert (given.epochs, given.patience, given.conv, given.pool, given.input_map) == (10, 3, [], "last", "linear")
    no_conv = resolved(frame=12, conv=[])  # --conv none: no front-end to pool, so the recipe's head is the plain max
    assert (no_conv.conv, no_conv.pool, no_conv.epochs) == ([], "max", LONG_SERIES_RECIPE["epochs"])
    regress = resolved(frame=12, task="regress")
    assert (regress.epochs, regress.patience, regress.pool, regress.input_map) == (30, 6, "last", "linear")
    bi = resolved(frame=12, arch="bilstm", layers=2)  # no causal front-end or running max for a BiLSTM: the rest
    assert (bi.conv, bi.pool, bi.epochs, bi.input_map) == ([], "last", LONG_SERIES_RECIPE["epochs"], "quantile")


def test_a_classifier_over_variable_length_sequences_takes_the_sequence_recipe_unless_told_otherwise():
    """Sequences of different lengths (resolve finds their padding) get SEQUENCE_RECIPE's front-end and head and
    keep the short-window fit; fixed windows, regression and a given --conv none or --pool keep theirs."""
    from edgelstm.data.dataset import Dataset, Windows
    from edgelstm.train.fit import SEQUENCE_RECIPE, TrainOptions

    def resolved(padded: bool, **kw) -> TrainOptions:
        X = np.ones((4, 12, 2), np.float32)
        if padded:
            X[0, :5] = np.nan  # pre-padding: a sequence of 7 samples
        ds = Dataset("v.npz", ["a", "b"], windows=Windows(X, np.array([0, 1, 0, 1]), np.arange(4)))
        o = TrainOptions(**kw)
        o.resolve(ds)
        o.check()
        return o

    seq = resolved(True)
    assert seq.variable_length and {k: getattr(seq, k) for k in SEQUENCE_RECIPE} == SEQUENCE_RECIPE
    assert (seq.epochs, seq.patience, seq.frame) == (30, 6, 1)
    fixed = resolved(False)
    assert not fixed.variable_length and (fixed.conv, fixed.pool) == ([], "last")
    assert (resolved(True, conv=[]).conv, resolved(True, conv=[]).pool) == ([], "last")
    assert resolved(True, pool="max").pool == "max" and resolved(True, pool="max").conv == [[5, 32]]
    assert (resolved(True, task="regress").conv, resolved(True, task="regress").pool) == ([], "last")
