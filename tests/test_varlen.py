"""Variable-length sequences: NPZ `X` flat [sum T, F] + `lengths`; training pads and masks, the step model steps
each sequence over its own samples from zero state, and both give the same outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import engine_windows, invoke, one_line_error

from edgelstm.data.dataset import load
from edgelstm.errors import InputError


def varlen_npz(path, n=48, lo=5, hi=15, F=2, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(lo, hi + 1, n)
    y = np.arange(n) % 3
    seqs = [(rng.normal(size=(L, F)) + y[i]).astype(np.float32) for i, L in enumerate(lengths)]
    np.savez(path, X=np.concatenate(seqs), lengths=lengths, y=y, labels=np.array(["a", "b", "c"]))
    return path, seqs


def test_flat_sequences_are_read_pre_padded_with_nan(tmp_path):
    path, seqs = varlen_npz(tmp_path / "v.npz")
    w = load(path).windows
    assert w.X.shape == (48, max(len(s) for s in seqs), 2)
    for i, s in enumerate(seqs):
        real = ~np.isnan(w.X[i]).any(axis=1)
        assert real.sum() == len(s) and real[-len(s) :].all()  # padding in front: each sequence ends at the end
        assert np.array_equal(w.X[i, real], s)


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(X=np.zeros((10, 2)), lengths=np.array([4, 5])), r"'lengths' add up to 9 samples but X has 10"),
        (dict(X=np.zeros((2, 5, 2)), lengths=np.array([5, 5])), r"with 'lengths', X must be the sequences one after"),
        (dict(X=np.zeros((4, 2)), lengths=np.array([4, 0])), r"'lengths' must be whole numbers of at least 1"),
    ],
)
def test_bad_lengths_are_one_line_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "v.npz", y=np.zeros(len(arrays["lengths"]), np.int64), **arrays)
    with pytest.raises(InputError, match=message):
        load(tmp_path / "v.npz")


def test_normalization_ignores_the_padding(tmp_path):
    from edgelstm.data.normalize import Normalization

    path, seqs = varlen_npz(tmp_path / "v.npz")
    norm = Normalization.fit(load(path).windows.X)
    flat = np.concatenate(seqs).astype(np.float64)
    assert np.allclose(norm.mean, flat.mean(axis=0), atol=1e-5) and np.allclose(norm.std, flat.std(axis=0), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch, more",
    [
        ("lstm", []),  # train's recipe for sequences: a 5:32 front-end and the maxconv head
        ("lstm", ["--conv", "none", "--pool", "last"]),
        ("gru", ["--conv", "none"]),
        ("gru", ["--conv", "3:4"]),
        ("lstm", ["--frame", "4", "--conv", "2:4"]),
        ("lstm", ["--pool", "max"]),
        ("gru", ["--frame", "4", "--conv", "2:4", "--pool", "max"]),
        ("lstm", ["--frame", "4", "--conv", "2:4", "--pool", "maxconv"]),
    ],
)
def test_masked_keras_model_and_step_model_agree_per_sequence(arch, more, tmp_path):
    """A convolutional front-end too: pre-padding gives the causal convolution zeros, as the zero state does; and a
    max-pooled head, whose running max the padding must not reach."""
    path, seqs = varlen_npz(tmp_path / "v.npz")
    m = tmp_path / "m"
    r = invoke("train", path, "--arch", arch, "--units", "8", "--epochs", "2", "--augment", "1", *more, "-o", m)
    assert r.exit_code == 0, r.output
    cfg = json.loads((m / "config.json").read_text())
    assert cfg["masked"] is True and cfg["window"] == (16 if "--frame" in more else 15)  # whole frames of 4
    r = invoke("convert", m)
    assert r.exit_code == 0, r.output
    assert "writing the step model only" in r.stderr and not (m / "sequence.tflite").exists()
    from edgelstm.data.prepare import model_inputs
    from edgelstm.models.config import ModelConfig
    from edgelstm.models.modeldir import load_keras

    _, keras_model = load_keras(m)
    mc = ModelConfig.from_json(cfg)
    X = load(path).windows.X
    ref = keras_model.predict(model_inputs(mc, X), verbose=0)
    stepped = engine_windows(m / "step.tflite", model_inputs(mc, X, keep_padding=True))
    assert np.abs(stepped - ref).max() <= 1e-5
    # the same through evaluate: the runner steps each sequence over its own samples
    keras_eval = json.loads(invoke("evaluate", m, path, "--json").stdout)
    step_eval = json.loads(invoke("evaluate", m / "step.tflite", path, "--json").stdout)
    assert keras_eval["accuracy"] == step_eval["accuracy"] and keras_eval["n"] == step_eval["n"] == 48


@pytest.mark.slow
def test_int8_step_model_of_variable_length_sequences_keeps_the_decisions(tmp_path):
    path, _ = varlen_npz(tmp_path / "v.npz", n=90)
    m = tmp_path / "m"
    assert invoke("train", path, "--units", "16", "--epochs", "4", "-o", m).exit_code == 0
    r = invoke("quantize", m, "--mode", "int8", "--calibration", "small", "-o", tmp_path / "q")
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "q" / "report.json").read_text())
    assert rep["models"][0]["vs_reference"]["argmax_agreement"] >= 0.99


@pytest.mark.slow
def test_distill_takes_the_teachers_training_file_when_its_test_file_set_the_window(tmp_path):
    """A teacher trained with --test takes its window from the longest sequence of both files; distilling on the
    training file alone (shorter sequences) pads them to that window, as train does, instead of refusing."""
    train, seqs = varlen_npz(tmp_path / "train.npz", hi=12)
    test, _ = varlen_npz(tmp_path / "test.npz", lo=14, hi=15, seed=1)
    t, s = tmp_path / "teacher", tmp_path / "student"
    r = invoke("train", train, "--test", test, "--units", "8", "--epochs", "2", "--augment", "1", "-o", t)
    assert r.exit_code == 0, r.output
    assert json.loads((t / "config.json").read_text())["window"] == 15 > max(len(q) for q in seqs)
    args = ("--student", "gru:4", "--epochs", "2", "--no-int8", "-o", s)
    r = invoke("distill", train, "--teacher", t, *args)
    assert r.exit_code == 0, r.output
    cfg = json.loads((s / "config.json").read_text())
    assert (cfg["window"], cfg["masked"], cfg["conv"], cfg["pool"]) == (15, True, [], "last")


@pytest.mark.slow
def test_a_variable_length_bilstm_is_refused_before_training(tmp_path):
    path, _ = varlen_npz(tmp_path / "v.npz")
    err = one_line_error(invoke("train", path, "--arch", "bilstm", "--epochs", "1", "-o", tmp_path / "m"))
    assert "variable-length sequences: a BiLSTM over variable-length sequences needs each direction" in err
    assert not (tmp_path / "m").exists()


def csv_folder(folder, seqs, labels):
    """One CSV recording per sequence (its own length), a label column."""
    folder.mkdir()
    for i, (s, lab) in enumerate(zip(seqs, labels)):
        rows = ["a,b,label"] + [f"{v[0]:.6f},{v[1]:.6f},{lab}" for v in s]
        (folder / f"r{i:03d}.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_csv_recordings_of_any_length_are_sequences(tmp_path):
    from edgelstm.data.dataset import ColumnSpec

    _, seqs = varlen_npz(tmp_path / "v.npz", n=12)
    labels = ["abc"[i % 3] for i in range(12)]
    folder = csv_folder(tmp_path / "recs", seqs, labels)
    ds = load(folder, ColumnSpec(sequences=True))
    w = ds.windows
    assert ds.recordings == [] and w.X.shape == (12, max(len(s) for s in seqs), 2)
    for i, s in enumerate(seqs):  # the same pre-padded layout as an NPZ with lengths
        real = ~np.isnan(w.X[i]).any(axis=1)
        assert real.sum() == len(s) and real[-len(s) :].all()
        assert np.allclose(w.X[i, real], s, atol=1e-6)
    assert [ds.labels[c] for c in w.y] == labels and list(w.groups) == [f"r{i:03d}" for i in range(12)]
    assert ds.columns["sequences"] is True  # recorded, so quantize and evaluate read the data the same way


def test_sequences_need_one_label_per_recording(tmp_path):
    from edgelstm.data.dataset import ColumnSpec

    folder = tmp_path / "recs"
    folder.mkdir()
    (folder / "r0.csv").write_text("a,b,label\n1,2,x\n1,2,x\n3,4,y\n")
    with pytest.raises(InputError, match=r"recording r0 holds 2 classes \(x, y\); with --sequences each"):
        load(folder, ColumnSpec(sequences=True))
    path, _ = varlen_npz(tmp_path / "v.npz")
    with pytest.raises(InputError, match=r"--sequences is for CSV recordings; an NPZ gives sequences with 'lengths'"):
        load(path, ColumnSpec(sequences=True))


@pytest.mark.slow
def test_train_and_evaluate_a_folder_of_csv_recordings_of_any_length(tmp_path):
    """Recordings of 5-15 samples (shorter than any window): without --sequences there is nothing to train on; with
    it every recording is one masked sequence, and the step model scores each from zero state as Keras does."""
    _, seqs = varlen_npz(tmp_path / "v.npz", n=48)
    folder = csv_folder(tmp_path / "recs", seqs, ["abc"[i % 3] for i in range(48)])
    m = tmp_path / "m"
    r = invoke("train", folder, "--units", "8", "--epochs", "2", "--augment", "1", "-o", m)
    assert r.exit_code == 2 and "is longer than every recording (longest has 15 samples" in r.output
    r = invoke("train", folder, "--sequences", "--units", "8", "--epochs", "2", "--augment", "1", "-o", m)
    assert r.exit_code == 0, r.output
    cfg = json.loads((m / "config.json").read_text())
    assert cfg["masked"] is True and cfg["window"] == 15
    assert invoke("convert", m, "--kind", "step").exit_code == 0
    keras_eval = json.loads(invoke("evaluate", m, folder, "--json").stdout)
    step_eval = json.loads(invoke("evaluate", m / "step.tflite", folder, "--json").stdout)
    assert keras_eval["n"] == step_eval["n"] == 48  # one score per recording
    assert keras_eval["accuracy"] == step_eval["accuracy"]
