"""Splits the user chose: their own validation/test files, splits by subject, recording or time, and window and
stride taken from the data when not given."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import invoke, one_line_error

from edgelstm.data.dataset import ColumnSpec, load
from edgelstm.data.prepare import load_splits, prepare
from edgelstm.errors import InputError
from edgelstm.train.fit import TrainOptions


def windows_npz(path, n=60, T=12, F=3, subjects=6, seed=0, labels=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(labels)
    X = rng.normal(size=(n, T, F)).astype(np.float32) + y[:, None, None]
    subj = np.array([f"p{i % subjects}" for i in range(n)])
    np.savez(path, X=X, y=y, labels=np.array(labels), subjects=subj, groups=np.array([f"r{i}" for i in range(n)]))
    return path


def test_split_by_subject_keeps_every_subject_in_one_split(tmp_path):
    ds = load(windows_npz(tmp_path / "d.npz", subjects=10))
    prep = prepare(ds, 12, 6, "classify", split_by="subject")
    sets = [set(w.subjects.tolist()) for w in (prep.train, prep.val, prep.test)]
    assert all(sets) and not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sum(len(w) for w in (prep.train, prep.val, prep.test)) == 60


def test_split_by_recording_mixes_subjects_that_by_subject_keeps_apart(tmp_path):
    ds = load(windows_npz(tmp_path / "d.npz", subjects=3))
    prep = prepare(ds, 12, 6, "classify", split_by="recording")
    assert set(prep.train.subjects.tolist()) & set(prep.test.subjects.tolist())


def test_split_by_subject_without_subjects_says_how_to_give_them(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((9, 4, 2), np.float32), y=np.arange(9) % 3)
    with pytest.raises(InputError, match=r"--split-by subject needs subject ids: an NPZ array 'subjects', or a CSV"):
        prepare(load(tmp_path / "d.npz"), 4, 2, "classify", split_by="subject")


def test_a_test_file_replaces_the_held_out_test_share(tmp_path):
    ds = load(windows_npz(tmp_path / "train.npz", n=40))
    test = load(windows_npz(tmp_path / "test.npz", n=9, seed=1))
    prep = prepare(ds, 12, 6, "classify", test=test)
    assert len(prep.test) == 9 and np.array_equal(prep.test.X, test.windows.X)
    assert len(prep.train) + len(prep.val) == 40  # nothing of the training data is held out as test
    assert len(prep.val) > 0


def test_val_and_test_files_leave_all_of_data_for_training(tmp_path):
    ds = load(windows_npz(tmp_path / "train.npz", n=40))
    val, test = (load(windows_npz(tmp_path / f"{k}.npz", n=9, seed=i)) for i, k in enumerate(("val", "test"), 1))
    prep = prepare(ds, 12, 6, "classify", val=val, test=test)
    assert (len(prep.train), len(prep.val), len(prep.test)) == (40, 9, 9)


def test_test_labels_are_reindexed_into_the_training_labels(tmp_path):
    ds = load(windows_npz(tmp_path / "train.npz", labels=("a", "b", "c")))
    np.savez(tmp_path / "t.npz", X=np.zeros((4, 12, 3), np.float32), y=np.array([0, 1, 0, 1]), labels=["b", "c"])
    prep = prepare(ds, 12, 6, "classify", test=load(tmp_path / "t.npz"))
    assert prep.test.y.tolist() == [1, 2, 1, 2]


def test_a_test_file_with_an_unknown_class_is_refused(tmp_path):
    ds = load(windows_npz(tmp_path / "train.npz"))
    np.savez(tmp_path / "t.npz", X=np.zeros((2, 12, 3), np.float32), y=np.array([0, 1]), labels=["a", "zebra"])
    with pytest.raises(InputError, match=r"t\.npz: labels zebra do not occur in .*train\.npz"):
        prepare(ds, 12, 6, "classify", test=load(tmp_path / "t.npz"))


def test_csv_subject_column_groups_recordings_by_subject(tmp_path):
    lines = ["recording,subject,a,b,label"]
    for r in range(8):
        lines += [f"r{r},s{r // 2},{i * 0.1:.2f},{r},{'xy'[r % 2]}" for i in range(30)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    ds = load(tmp_path / "d.csv", ColumnSpec(subject_col="subject"))
    assert [r.subject for r in ds.recordings] == ["s0", "s0", "s1", "s1", "s2", "s2", "s3", "s3"]
    prep = prepare(ds, 10, 5, "classify", split_by="subject")
    sets = [set(w.subjects.tolist()) for w in (prep.train, prep.val, prep.test)]
    assert not (sets[0] & sets[2]) and not (sets[0] & sets[1])


def test_a_recording_with_two_subjects_is_refused(tmp_path):
    (tmp_path / "d.csv").write_text("recording,subject,a,label\nr0,s0,1,x\nr0,s1,2,x\n")
    with pytest.raises(InputError, match=r"d\.csv: recording 'r0' has subject ids \['s0', 's1'\].*needs one"):
        load(tmp_path / "d.csv", ColumnSpec(subject_col="subject"))


def test_window_and_stride_come_from_the_data_when_not_given(tmp_path):
    opts = TrainOptions()
    opts.resolve(load(windows_npz(tmp_path / "d.npz", T=25)))
    assert (opts.window, opts.stride) == (25, 12)
    forecast = TrainOptions(task="forecast")
    forecast.resolve(_stream())
    assert (forecast.window, forecast.stride) == (100, 1)  # every target is trained on
    given = TrainOptions(window=30, stride=7)
    given.resolve(_stream())
    assert (given.window, given.stride) == (30, 7)


def _stream():
    from edgelstm.data.dataset import Dataset, Recording

    return Dataset("s", ["a"], [Recording("r", np.zeros((500, 1), np.float32))])


@pytest.mark.slow
def test_train_with_a_test_file_scores_it_and_names_the_protocol(tmp_path):
    train, test = windows_npz(tmp_path / "train.npz", n=48), windows_npz(tmp_path / "test.npz", n=12, seed=3)
    r = invoke("train", train, "--test", test, "--units", "4", "--epochs", "1", "--augment", "0", "-o", tmp_path / "m")
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["test"]["n"] == 12
    assert metrics["protocol"] == f"the test file {test} (nothing of the training data held out)"
    assert metrics["protocol"] in r.output
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["window"] == 12 and cfg["training"]["test_data"] == str(test)
    from edgelstm.models.config import ModelConfig

    rebuilt = load_splits(ModelConfig.from_json(cfg))
    assert np.array_equal(rebuilt.test.X, load(test).windows.X)  # calibration and the report see the same split


@pytest.mark.slow
def test_train_split_by_subject_through_the_cli(tmp_path):
    data = windows_npz(tmp_path / "d.npz", n=60, subjects=10)
    r = invoke("train", data, "--split-by", "subject", "--units", "4", "--epochs", "1", "-o", tmp_path / "m")
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["protocol"] == "held out: 15 % of the subjects, unseen in training (seed 0)"
    split = metrics["split"]
    assert not set(split["train"]["subjects"]) & set(split["test"]["subjects"])


def test_split_by_subject_without_subjects_is_one_line_in_the_cli(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((9, 4, 2), np.float32), y=np.arange(9) % 3)
    err = one_line_error(invoke("train", tmp_path / "d.npz", "--split-by", "subject", "-o", tmp_path / "m"))
    assert err.startswith(f"Error: {tmp_path / 'd.npz'}: --split-by subject needs subject ids")


@pytest.mark.slow
def test_cross_validation_by_subject_reports_mean_and_sd_then_trains_on_all(tmp_path):
    data = windows_npz(tmp_path / "d.npz", n=60, subjects=6)
    out = tmp_path / "m"
    r = invoke("train", data, "--cv", "3", "--units", "4", "--epochs", "1", "--augment", "0", "-o", out)
    assert r.exit_code == 0, r.output
    metrics = json.loads((out / "metrics.json").read_text())
    cv = metrics["cv"]
    assert cv["folds"] == 3 and cv["by"] == "subject" and len(cv["per_fold"]) == 3
    acc = [f["accuracy"] for f in cv["per_fold"]]
    assert cv["accuracy"]["mean"] == pytest.approx(np.mean(acc))
    assert cv["accuracy"]["sd"] == pytest.approx(np.std(acc, ddof=1))
    assert sum(f["n"] for f in cv["per_fold"]) == 60 == metrics["test"]["n"]  # every window scored out of fold once
    assert metrics["protocol"].startswith("leave-subject-out cross-validation, 3 folds")
    assert "cross-validated accuracy" in r.output and "over 3 folds by subject (mean ± sd)" in r.output
    assert metrics["split"]["test"]["windows"] == 0  # the saved model saw all of the data (but validation)


def test_folds_keep_each_subject_whole_and_cover_every_subject(tmp_path):
    from edgelstm.train.crossval import fold_datasets

    ds = load(windows_npz(tmp_path / "d.npz", n=60, subjects=7))
    unit, parts = fold_datasets(ds, 3, 0, "classify")
    assert unit == "subject"
    tests = [set(t.windows.subjects.tolist()) for _, t in parts]
    assert set().union(*tests) == {f"p{i}" for i in range(7)} and sum(len(s) for s in tests) == 7
    for rest, test in parts:
        assert not set(rest.windows.subjects.tolist()) & set(test.windows.subjects.tolist())


def test_cv_with_fewer_subjects_than_folds_is_refused(tmp_path):
    from edgelstm.train.crossval import fold_datasets

    with pytest.raises(InputError, match=r"--cv 5 needs at least 5 subjects; the data has 3"):
        fold_datasets(load(windows_npz(tmp_path / "d.npz", subjects=3)), 5, 0, "classify")


def test_axis_triplets_are_found_from_channel_names():
    from edgelstm.data.augment import axis_triplets

    names = ["acc_x", "acc_y", "acc_z", "gyrX", "gyrY", "gyrZ", "temp", "mag_x", "mag_y"]
    assert axis_triplets(names) == [(0, 1, 2), (3, 4, 5)]


def test_rotations_are_proper_and_keep_each_sample_norm():
    from edgelstm.data.augment import random_rotations

    R = random_rotations(np.random.default_rng(0), 50, 90.0)
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-5) and np.allclose(np.linalg.det(R), 1, atol=1e-5)
    angle = np.degrees(np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert angle.max() <= 90.0 + 1e-3 and angle.max() > 45


def test_rotation_augmentation_turns_triplets_and_leaves_other_channels(tmp_path):
    from edgelstm.data.augment import augment
    from edgelstm.data.dataset import Windows
    from edgelstm.data.normalize import Normalization

    X = np.random.default_rng(1).normal(size=(5, 8, 4)).astype(np.float32)
    w = Windows(X, np.zeros(5, np.int64), np.array(list("abcde")))
    norm = Normalization(np.zeros(4, np.float32), np.ones(4, np.float32))
    out = augment(w, norm, 1, gain=0.0, jitter=0.0, seed=0, rotate=60.0, triplets=[(0, 1, 2)])
    copy = out.X[5:]
    assert np.allclose(np.linalg.norm(copy[..., :3], axis=-1), np.linalg.norm(X[..., :3], axis=-1), atol=1e-4)
    assert not np.allclose(copy[..., :3], X[..., :3]) and np.array_equal(copy[..., 3], X[..., 3])


def test_named_axes_give_the_triplets_and_bad_names_are_named():
    from edgelstm.data.augment import named_triplets

    names = ["ax", "ay", "az", "wx", "wy", "wz", "t"]
    assert named_triplets("ax,ay,az; wx,wy,wz", names) == [(0, 1, 2), (3, 4, 5)]
    with pytest.raises(InputError, match=r"'ax,ay,q': no channel\(s\) q"):
        named_triplets("ax,ay,q", names)
    with pytest.raises(InputError, match=r"'ax,ay': 2 names"):
        named_triplets("ax,ay", names)


def test_warping_keeps_ends_order_and_padding():
    """Time warping resamples along a monotone clock that keeps the window's first and last sample; magnitude
    warping scales around the mean by a smooth curve; a padded sequence is left alone."""
    from edgelstm.data.augment import smooth_curves, warp_windows

    rng = np.random.default_rng(0)
    curves = smooth_curves(rng, 200, 50, 0.2)
    assert curves.shape == (200, 50) and abs(curves.mean() - 1) < 0.03
    assert np.abs(np.diff(curves, axis=1)).max() < np.abs(curves - 1).max()  # smooth, not white noise
    ramp = np.tile(np.arange(50, dtype=np.float32)[None, :, None], (20, 1, 1))  # a ramp: time warp keeps it rising
    padded = np.full((1, 50, 1), np.nan, np.float32)
    padded[0, 30:] = 1.0
    X = np.concatenate([ramp, padded])
    out = warp_windows(np.random.default_rng(1), X, np.zeros(1, np.float32), 0.0)
    assert np.allclose(out, X, equal_nan=True)  # sigma 0: the identity
    out = warp_windows(np.random.default_rng(1), X, np.zeros(1, np.float32), 0.3)
    assert not np.allclose(out[:20], ramp) and np.array_equal(out[20:], padded, equal_nan=True)
    # magnitude warping of a non-negative ramp around 0 keeps signs; the time warp keeps the first sample at 0
    assert (out[:20, 0] == 0).all() and (out[:20] >= 0).all()


def test_cosine_schedule_warms_up_then_decays():
    from edgelstm.train.fit import FitOptions, lr_at

    o = FitOptions(learning_rate=1.0, epochs=10, warmup=2, lr_schedule="cosine")
    lrs = [lr_at(e, o) for e in range(10)]
    assert lrs[:2] == [0.5, 1.0] and lrs[2] == 1.0 and lrs[-1] == pytest.approx(0.5 * (1 + np.cos(np.pi * 7 / 8)))
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:]))


def test_balanced_class_weights():
    from edgelstm.train.fit import class_weights

    assert class_weights(np.array([0, 0, 0, 1]), 3) == {0: 4 / 9, 1: 4 / 3}


def test_a_classifier_trains_with_the_measured_recipe_unless_told_otherwise():
    """fit.CLASSIFY_RECIPE for classification (docs/accuracy.md), the plain recipe for regression and distilled
    students; an option given, 0 included, is kept."""
    from edgelstm.train.distill import DistillOptions
    from edgelstm.train.fit import TrainOptions

    def checked(**kw):
        o = TrainOptions(window=20, stride=10, frame=1, **kw)
        o.check()
        return o.lr_schedule, o.weight_decay, o.label_smoothing, o.dropout

    assert checked() == ("cosine", 1e-4, 0.1, 0.0)
    assert checked(task="regress") == ("constant", 0.0, 0.0, 0.0)
    assert checked(label_smoothing=0.0, lr_schedule="plateau") == ("plateau", 1e-4, 0.0, 0.0)
    d = DistillOptions()
    d.check()
    assert (d.lr_schedule, d.weight_decay, d.label_smoothing) == ("constant", 0.0, 0.0)
