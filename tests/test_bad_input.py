"""Each bad input: one line naming the file (and line), exit code 2, no traceback."""

from __future__ import annotations

import json

import pytest
from conftest import invoke, one_line_error


def csv(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


CASES = {
    "missing": (None, r"Error: .*nope\.csv: no such file or directory"),
    "empty": ("", r"d\.csv: empty file"),
    "header only": ("a,b,label\n", r"d\.csv: no data rows"),
    "wrong count": ("a,b,label\n1,2,x\n1,x\n", r"d\.csv line 3: expected 3 values, found 2"),
    "non-numeric": ("a,b,label\n1,2,x\n1,abc,x\n", r"d\.csv line 3, column b: not a number: 'abc'"),
    "nan": ("a,b,label\n1,2,x\nnan,2,x\n", r"d\.csv line 3, column a: NaN value \(choose --nan"),
    "inf": ("a,b,label\n1,2,x\n1,inf,x\n", r"d\.csv line 3, column b: infinite value"),
    "no label": ("a,b,c\n1,2,3\n", r"d\.csv: no label column 'label' \(columns: a, b, c\)"),
    "too short": ("recording,a,b,label\nr,1,2,x\nr,1,2,y\n", r"d\.csv: window 100 is longer than every recording"),
}


@pytest.mark.parametrize("case", CASES)
def test_train_bad_csv(tmp_path, case):
    text, pattern = CASES[case]
    path = tmp_path / "nope.csv" if text is None else csv(tmp_path, text)
    err = one_line_error(invoke("train", path, "-o", tmp_path / "out"))
    import re

    assert re.search(pattern, err), err
    assert not (tmp_path / "out").exists()  # nothing partial left behind


def test_bad_npz(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"PK\x03\x04 truncated")
    err = one_line_error(invoke("train", tmp_path / "x.npz", "-o", tmp_path / "o"))
    assert "x.npz: not a readable NPZ file" in err


def test_model_dir_not_ours(tmp_path):
    from edgelstm.errors import ModelDirError
    from edgelstm.models.config import ModelConfig

    (tmp_path / "m").mkdir()
    with pytest.raises(ModelDirError, match="not an edgelstm model directory"):
        ModelConfig.load(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelDirError, match="not an edgelstm model configuration"):
        ModelConfig.load(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({"format": "edgelstm-model", "format_version": 99}))
    with pytest.raises(ModelDirError, match="format version 99 is not supported"):
        ModelConfig.load(tmp_path / "m")


def test_train_refuses_to_overwrite_foreign_dir(tmp_path, activity_csv):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("do not delete")
    err = one_line_error(invoke("train", activity_csv, "--epochs", "1", "-o", out))
    assert "precious: exists and is not an edgelstm model directory" in err
    assert (out / "thesis.txt").read_text() == "do not delete"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--augment", "-1"], "Error: --augment must be 0 or more"),
        (["--aug-gain", "1.5"], "Error: --aug-gain must be in [0, 1) and --aug-jitter at least 0"),
        (["--aug-warp", "1"], "Error: --aug-warp must be in [0, 1)"),
        (["--min-epochs", "31"], "Error: --min-epochs must be in [0, --epochs]"),
    ],
)
def test_train_bad_augmentation_options(tmp_path, activity_csv, args, message):
    err = one_line_error(invoke("train", activity_csv, *args, "-o", tmp_path / "out"))
    assert err == message
    assert not (tmp_path / "out").exists()
