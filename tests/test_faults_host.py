"""issue 12, the host side: outputs checked before work (3), non-finite options and divergent training (2),
inconsistent model directories (6), NaN calibration (7) — each a one-line error with nothing left behind."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
from conftest import invoke, one_line_error


def small_activity(tmp_path, scale: float = 1.0):
    """A small activity CSV (4 subjects x 6 s); `scale` replaces one channel by ±scale (1e308: finite in float64,
    far beyond float32)."""
    from edgelstm.data.sample import write_activity_csv

    path = write_activity_csv(tmp_path / "act.csv", subjects=4, seconds=6.0, hard=False)  # as the fixture's
    if scale != 1.0:
        lines = path.read_text().splitlines()
        out = [lines[0]]
        for ln in lines[1:]:
            cells = ln.split(",")
            cells[2] = repr(scale if float(cells[2]) >= 0 else -scale)
            out.append(",".join(cells))
        path.write_text("\n".join(out) + "\n")
    return path


TRAIN_FAST = ["--units", "4", "--window", "20", "--epochs", "1"]


# ---- point 3: outputs checked before any work ----------------------------------------------------------------------
def test_train_output_under_a_file_or_in_proc_fails_at_once(tmp_path):
    data = small_activity(tmp_path)
    (tmp_path / "afile").write_text("x")
    for out, fragment in [
        (tmp_path / "afile" / "sub", f"{tmp_path / 'afile'} is a file, so nothing can be written under it"),
        (tmp_path / "afile", "exists and is not an edgelstm model directory"),
        ("/proc/x", "/proc/x: cannot write in /proc"),
    ]:
        t0 = time.monotonic()
        err = one_line_error(invoke("train", data, *TRAIN_FAST, "-o", out))
        assert fragment in err, err
        assert time.monotonic() - t0 < 5  # before: after the whole training (22 s in the audit)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["act.csv", "afile"]


def test_convert_and_quantize_outputs_checked_before_conversion(tmp_path, tiny_model_dir):
    m = tiny_model_dir(arch="lstm", layers=1)
    (tmp_path / "afile").write_text("x")
    err = one_line_error(invoke("quantize", m, "--mode", "dynamic", "-o", tmp_path / "afile"))
    assert err == f"Error: {tmp_path / 'afile'}: exists and is not a folder"
    err = one_line_error(invoke("convert", m, "-o", tmp_path / "afile" / "sub"))
    assert err.endswith("is a file, so nothing can be written under it")
    err = one_line_error(invoke("convert", m, "-o", "/proc/nope"))
    assert err.startswith("Error: /proc/nope: cannot write in /proc")
    assert not any(p.name.startswith(".") and "partial" in p.name for p in m.iterdir())


# ---- point 2: non-finite options, divergent training --------------------------------------------------------------
# the option cases (--lr nan/inf/0, --clip-at -1, --aug-jitter nan, --dropout nan, --rate -50/0/nan) moved to
# tests/corpus_cases.py


def test_data_beyond_float32_is_refused_before_training(tmp_path):
    """A channel of ±1e308 is finite in float64 and infinite in float32, where training computes: before, train
    exited 0 and wrote norm_std = Infinity into config.json."""
    err = one_line_error(invoke("train", small_activity(tmp_path, 1e308), *TRAIN_FAST, "-o", tmp_path / "out"))
    assert err.endswith("line 2, column acc_x: value 1e+308 is beyond float32's range (±3.4e38); rescale the column")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # trains (one epoch of a 4-unit LSTM)
def test_divergent_training_stops_with_nothing_written(tmp_path):
    """--lr 1e38: the loss is NaN within the first epoch. Before: a model of NaN weights, exit 0."""
    r = invoke("train", small_activity(tmp_path), *TRAIN_FAST, "--lr", "1e38", "-o", tmp_path / "out")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.stderr.strip().splitlines()[-1] == (
        "Error: training diverged: the training loss is nan in epoch 1; nothing was written "
        "(lower --lr, or look for huge values in the data)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["act.csv"]


# ---- point 6: inconsistent model directories ----------------------------------------------------------------------
# inconsistent config.json (one norm value for 3 features, std 0, labels [], 2 channel names, n_features 0): the
# convert/* cases of tests/corpus_cases.py


def test_runner_refuses_inconsistent_metadata(tmp_path):
    from edgelstm.errors import MetadataError
    from edgelstm.runtime.stream import check_consistent

    meta = {"task": "classify", "labels": ["a"], "normalization": {"mean": [0.0], "std": [1.0, 1.0]}}
    with pytest.raises(MetadataError, match=r"2 stds for 1 input features; 1 labels for 4 outputs$"):
        check_consistent(meta, tmp_path / "m.tflite", 4, 1)


# ---- point 7: calibration with NaN ---------------------------------------------------------------------------------
def test_calibration_values_checked():
    from edgelstm.errors import InputError
    from edgelstm.export.calibrate import check_calibration_values

    X = np.zeros((3, 4, 2), np.float32)
    check_calibration_values(X, False, "c.npz")
    bad = X.copy()
    bad[1, 2, 0] = np.nan
    with pytest.raises(InputError, match=r"1 NaN values \(first: window 1, step 2, feature 0\)"):
        check_calibration_values(bad, False, "c.npz")
    with pytest.raises(InputError, match="1 NaN values"):
        check_calibration_values(bad, True, "c.npz")  # not a whole row of padding
    padded = X.copy()
    padded[0, :2] = np.nan  # leading padding of a shorter sequence: fine for a masked model only
    check_calibration_values(padded, True, "c.npz")
    with pytest.raises(InputError, match="NaN"):
        check_calibration_values(padded, False, "c.npz")
    trailing = X.copy()
    trailing[0, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        check_calibration_values(trailing, True, "c.npz")
    with pytest.raises(InputError, match="infinite"):
        check_calibration_values(np.full((1, 4, 2), np.inf, np.float32), False, "c.npz")
    with pytest.raises(InputError, match="no calibration windows"):
        check_calibration_values(np.zeros((0, 4, 2), np.float32), False, "c.npz")


def test_quantize_refuses_nan_calibration_before_converting(tmp_path, tiny_model_dir):
    m = tmp_path / "m"
    shutil.copytree(tiny_model_dir(arch="lstm", layers=1), m)
    X = np.random.default_rng(0).normal(0, 1, (8, 20, 3)).astype(np.float32)
    X[3, 5, 1] = np.nan
    np.savez(tmp_path / "cal.npz", X=X)
    before = sorted(p.name for p in m.iterdir())
    err = one_line_error(invoke("quantize", m, "--mode", "int8", "--calibration", tmp_path / "cal.npz"))
    assert "cal.npz: calibration data holds 1 NaN values (first: window 3, step 5, feature 1)" in err
    assert sorted(p.name for p in m.iterdir()) == before


# ---- point 4: model directories independent of the folder; CSV reader messages -----------------------------------
def test_quantize_elsewhere_without_the_recorded_data_fails_before_writing(tmp_path, tiny_model_dir, monkeypatch):
    """config.json records data/activity.csv relative to where training ran: from another folder, quantize used to
    write step.dynamic.tflite, then fail on the report. Now it fails first and says how to give the data."""
    m = tmp_path / "m"
    shutil.copytree(tiny_model_dir(arch="lstm", layers=1), m)
    cfg = json.loads((m / "config.json").read_text())
    cfg["training"] = {**cfg.get("training", {}), "data": "data/activity.csv"}
    (m / "config.json").write_text(json.dumps(cfg))
    before = sorted(p.name for p in m.iterdir())
    monkeypatch.chdir(tmp_path)
    err = one_line_error(invoke("quantize", m, "--mode", "dynamic"))
    assert err == (
        f"Error: {m}: its training data data/activity.csv (recorded in config.json, relative to {tmp_path}) is not "
        "there; give the same data with --data PATH"
    )
    err = one_line_error(invoke("quantize", m, "--mode", "dynamic", "--data", tmp_path / "nope.csv"))
    assert err == f"Error: {tmp_path / 'nope.csv'}: no such file or directory (--data)"
    assert sorted(p.name for p in m.iterdir()) == before


@pytest.mark.slow  # trains (one epoch of a 4-unit LSTM)
def test_train_records_the_data_path_absolute(tmp_path, monkeypatch):
    import hashlib

    small_activity(tmp_path)
    monkeypatch.chdir(tmp_path)
    r = invoke("train", "act.csv", *TRAIN_FAST, "-o", "m")
    assert r.exit_code == 0, r.output
    training = json.loads((tmp_path / "m" / "config.json").read_text())["training"]
    assert training["data"] == str(tmp_path / "act.csv")
    assert training["data_sha256"] == hashlib.sha256((tmp_path / "act.csv").read_bytes()).hexdigest()
    assert training["val_data"] is None and training["val_data_sha256"] is None


def recorded_model_dir(tmp_path, tiny_model_dir, data):
    """A copy of a tiny model dir whose config.json records `data` (absolute path and SHA-256) as train does."""
    from edgelstm.data.dataset import content_sha256

    m = tmp_path / "m"
    shutil.copytree(tiny_model_dir(arch="lstm", layers=1), m)
    cfg = json.loads((m / "config.json").read_text())
    cfg["training"] = {**cfg.get("training", {}), "data": str(data), "data_sha256": content_sha256(data)}
    (m / "config.json").write_text(json.dumps(cfg))
    return m


def test_changed_training_data_is_noticed_before_anything_is_written(tmp_path, tiny_model_dir):
    """The recorded file edited after training: quantize (report or calibration) and evaluate --split test refuse
    at once — its splits would differ, so "held-out" windows could be ones the model trained on."""
    data = tmp_path / "d.csv"
    data.write_text("recording,a,b,c,label\nr,1,2,3,x\n")
    m = recorded_model_dir(tmp_path, tiny_model_dir, data)
    old = json.loads((m / "config.json").read_text())["training"]["data_sha256"]
    data.write_text("recording,a,b,c,label\nr,1,2,4,x\n")  # one value changed
    before = sorted(p.name for p in m.iterdir())
    changed = (
        f"Error: {m}: its training data {data} changed since training (sha256 "
        f"{hashlib_hex(data)[:12]}…, config.json records {old[:12]}…); give the data it was trained on with --data PATH"
    )
    for args in (["quantize", m, "--mode", "dynamic"], ["quantize", m, "--mode", "int8", "--no-report"]):
        assert one_line_error(invoke(*args)) == changed
    assert one_line_error(invoke("evaluate", m, "--split", "test")) == changed
    other = tmp_path / "other.csv"
    other.write_text("recording,a,b,c,label\nr,9,9,9,x\n")
    err = one_line_error(invoke("quantize", m, "--mode", "dynamic", "--data", other))
    assert err.startswith(f"Error: {other}: not the data {m} was trained on (sha256 ")
    err = one_line_error(invoke("evaluate", m, "--split", "test", "--data", other))
    assert err.startswith(f"Error: {other}: not the data {m} was trained on (sha256 ")
    err = one_line_error(invoke("evaluate", m, other, "--data", other))
    assert err == "Error: --data gives the training data of --split test; to score other data give it as DATA"
    assert sorted(p.name for p in m.iterdir()) == before


def hashlib_hex(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_folder_hash_covers_names_contents_and_membership(tmp_path):
    from edgelstm.data.dataset import content_sha256

    d = tmp_path / "recs"
    d.mkdir()
    (d / "a.csv").write_text("x\n1\n")
    (d / "b.csv").write_text("x\n2\n")
    (d / "notes.txt").write_text("ignored: the reader reads .csv only")
    h = content_sha256(d)
    (d / "notes.txt").write_text("still ignored")
    assert content_sha256(d) == h
    seen = {h}
    for change in (
        lambda: (d / "b.csv").write_text("x\n3\n"),
        lambda: (d / "b.csv").rename(d / "c.csv"),
        lambda: (d / "d.csv").write_text("x\n4\n"),
        lambda: (d / "a.csv").unlink(),
    ):
        change()
        now = content_sha256(d)
        assert now not in seen
        seen.add(now)
    assert content_sha256(d / "c.csv") == hashlib_hex(d / "c.csv")


def test_train_csv_with_bom_and_a_huge_cell(tmp_path):
    data = small_activity(tmp_path)
    text = data.read_text()
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + text.replace("recording", "rec", 1).encode())
    err = one_line_error(invoke("train", bom, "-o", tmp_path / "o"))
    assert "\ufeff" not in err and "column rec: not a number" in err  # before: column \ufeffrec
    wide = tmp_path / "wide.csv"
    wide.write_text(text.splitlines()[0] + "\n" + '"' + "1" * 200_000 + '",' + text.splitlines()[1] + "\n")
    err = one_line_error(invoke("train", wide, "-o", tmp_path / "o"))
    assert "wide.csv: not a readable CSV file (field larger than field limit (131072))" in err
    assert not (tmp_path / "o").exists()


# NPZ arrays (0-d or 2-D y, no features or time steps, NaN classes): the train/npz-* cases of tests/corpus_cases.py


def test_label_col_that_does_not_exist_is_named(tmp_path):
    """Before: 'line 2, column label: not a number' — blaming the real label column for the missing one."""
    data = small_activity(tmp_path)
    err = one_line_error(invoke("train", data, "--label-col", "nope", "-o", tmp_path / "o"))
    assert err.startswith(f"Error: {data}: no label column 'nope' (columns: recording, time, acc_x")
    assert err.endswith("; name it with --label-col")
