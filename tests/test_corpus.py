"""The bad-input corpus (issue 12): every row of tests/corpus_cases.py run in-process through the real CLI (click's
CliRunner): the expected exit code, exactly one error line holding the expected fragment, no traceback, and
nothing in the workspace new or changed afterwards (no output folder, no .partial file, no half-written model),
nor an edgelstm-* temporary left in $TMPDIR. Plus hypothesis fuzzing of the training CSV and NPZ readers."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from corpus_cases import CASES

STDIN = {"run/strict-bad-line": "1,2\n"}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_model_dir(path: Path, keras: bytes | None = b"not a keras file", **change) -> Path:
    """A model directory's config.json as train writes it (a 3-channel, 4-class LSTM 8, window 20), changed by
    `change`; model.keras is a placeholder: every case that uses it must fail before the model is loaded."""
    from edgelstm.models.config import ModelConfig

    cfg = ModelConfig(task="classify", arch="lstm", units=8, layers=1, window=20, n_features=3, n_outputs=4, stride=10)
    cfg.norm_mean, cfg.norm_std = [0.0] * 3, [1.0] * 3
    cfg.labels, cfg.channels = ["a", "b", "c", "d"], ["ax", "ay", "az"]
    path.mkdir()
    cfg.save(path)
    if change:
        d = json.loads((path / "config.json").read_text())
        d.update(change)
        (path / "config.json").write_text(json.dumps(d))
    if keras is not None:
        (path / "model.keras").write_bytes(keras)
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Every file the corpus names; built once."""
    from conftest import _tiny_model
    from test_runtime import make_step

    from edgelstm.data.dataset import content_sha256
    from edgelstm.data.sample import write_activity_csv

    w = tmp_path_factory.mktemp("corpus")
    write_activity_csv(w / "good.csv", subjects=4, seconds=6.0)
    texts = {
        "empty.csv": "",
        "header.csv": "a,b,label\n",
        "count.csv": "a,b,label\n1,2,x\n1,x\n",
        "text.csv": "a,b,label\n1,2,x\n1,abc,x\n",
        "nan.csv": "a,b,label\n1,2,x\nnan,2,x\n",
        "inf.csv": "a,b,label\n1,2,x\n1,inf,x\n",
        "nolabel.csv": "a,b,c\n1,2,3\n",
        "short.csv": "recording,a,b,label\nr,1,2,x\nr,1,2,y\n",
        "huge.csv": "recording,a,b,label\nr,1,1e308,x\nr,1,2,y\n",
        "wide.csv": "a" * 200_000 + ',"b\n1,2\n',
        "notes.txt": "not a model\n",
        "fc.csv": "time,a,b\n" + "".join(f"{i},{i % 7},{i % 5}\n" for i in range(400)),
        "afile": "a plain file\n",
        "broken.toml": "windows = [unclosed\n",
        "unknownkey.toml": "colour = 'red'\n",
        "testsplit.toml": "split = 'test'\n",
        "stratify.toml": "stratify = 'label'\n",
        "windows0.toml": "windows = 0\n",
        "recipedata.toml": f"data = '{w / 'gone.csv'}'\n",
        "hosts.ini": f"[devices]\ndev1 ansible_host=127.0.0.1 ansible_port={closed_port()}\n",
    }
    for name, text in texts.items():
        (w / name).write_text(text)
    (w / "binary.csv").write_bytes(b"\xff\xfe\x00garbage\x81\n\x90\x91,\x92\n")
    (w / "garbage.tflite").write_bytes(bytes(range(256)) * 8)
    (w / "garbage.onnx").write_bytes(b"\x08\x07garbage" * 50)
    (w / "empty.tflite").write_bytes(b"")
    (w / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated")
    (w / "emptydir").mkdir()
    (w / "precious").mkdir()
    (w / "precious" / "thesis.txt").write_text("do not delete")
    (w / "mixed").mkdir()
    (w / "mixed" / "a.csv").write_text("a,b,label\n1,2,x\n")
    (w / "mixed" / "b.csv").write_text("a,c,label\n1,2,x\n")
    X = np.zeros((6, 20, 3), np.float32)
    y = np.array([0, 1, 0, 1, 0, 1])
    npz = {
        "object.npz": dict(X=np.array([object(), object()], dtype=object)),  # needs pickle: must be refused
        "noX.npz": dict(Y=np.zeros((4, 3), np.float32)),
        "noy.npz": dict(X=X),
        "textX.npz": dict(X=np.array([["a"] * 3] * 6), y=y),
        "x4d.npz": dict(X=np.zeros((6, 20, 3, 1)), y=y),
        "y0d.npz": dict(X=X, y=np.array(1)),
        "y2d.npz": dict(X=X, y=np.zeros((6, 2))),
        "f0.npz": dict(X=np.zeros((6, 20, 0)), y=y),
        "t0.npz": dict(X=np.zeros((6, 0, 3)), y=y),
        "n0.npz": dict(X=np.zeros((0, 20, 3)), y=np.zeros(0)),
        "ynan.npz": dict(X=X, y=np.array([0, 1, np.nan, 0, 1, 0])),
        "yrows.npz": dict(X=X, y=y[:5]),
        "xnan.npz": dict(X=np.where(np.arange(6 * 20 * 3).reshape(6, 20, 3) == 66, np.nan, 0), y=y),  # [1, 2, 0]
        "yneg.npz": dict(X=X, y=np.array([0, 1, -1, 0, 1, 0])),
        "chnames.npz": dict(X=X, y=y, channels=np.array(["a", "b"])),
        "groups.npz": dict(X=X, y=y, groups=np.array(["g", "h"])),
        "lengths.npz": dict(X=np.zeros((10, 3), np.float32), y=np.zeros(2), lengths=np.array([4, 9])),
        "cal2d.npz": dict(X=np.zeros((8, 3), np.float32)),
        "cal5f.npz": dict(X=np.zeros((8, 20, 5), np.float32)),
        "cal7t.npz": dict(X=np.zeros((8, 7, 3), np.float32)),
        "calnan.npz": dict(X=np.where(np.arange(8 * 20 * 3).reshape(8, 20, 3) == 7, np.nan, 0).astype(np.float32)),
        "calinf.npz": dict(X=np.full((8, 20, 3), np.inf, np.float32)),
        "cal0.npz": dict(X=np.zeros((0, 20, 3), np.float32)),
    }
    for name, arrays in npz.items():
        np.savez(w / name, **arrays)
    write_model_dir(w / "model")
    (w.parent / f"{w.name}-home").mkdir()
    write_model_dir(w / "foreign", format="something-else")
    write_model_dir(w / "v99", format_version=99)
    (w / "notjson").mkdir()
    (w / "notjson" / "config.json").write_text("{not json")
    write_model_dir(w / "nokeras", keras=None)
    write_model_dir(w / "norm1", norm_mean=[0.0])
    write_model_dir(w / "std0", norm_std=[1.0, 0.0, 1.0])
    write_model_dir(w / "compand2", compand_center=[0.0, 0.0], compand_scale=[0.1, 0.0])
    write_model_dir(w / "compandneg", compand_center=[0.0] * 3, compand_scale=[-0.1, 0.0, 0.0])
    write_model_dir(w / "quantiledown", quantile_knots=[[1.0, 0.0], [], []], quantile_values=[[0.0, 1.0], [], []])
    write_model_dir(w / "labels0", labels=[])
    write_model_dir(w / "channels2", channels=["a", "b"])
    write_model_dir(w / "features0", n_features=0)
    write_model_dir(w / "bilstm2", arch="bilstm", layers=2)
    (w / "rec.csv").write_text("recording,ax,ay,az,label\nr,1,2,3,a\n")
    write_model_dir(w / "recorded", training={"data": str(w / "rec.csv"), "data_sha256": content_sha256(w / "rec.csv")})
    (w / "rec.csv").write_text("recording,ax,ay,az,label\nr,1,2,4,a\n")  # changed after "training"
    write_model_dir(w / "moved", training={"data": "data/activity.csv"})
    _, _, step = make_step(_tiny_model, w, "step", arch="lstm")  # a real float step .tflite, 3 channels
    assert step == w / "step.tflite"
    return w


def snapshot(w: Path) -> dict:
    """Every path, and each file's size and mtime (a folder's mtime moves with the output probe's create+remove)."""
    return {
        str(p.relative_to(w)): None if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(w.rglob("*"))
    }


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_corpus(workspace, monkeypatch, case):
    from edgelstm.cli import main

    name, line, code, fragment = case
    args = shlex.split(line.replace("{w}", str(workspace)).replace("{closed}", str(closed_port())))
    monkeypatch.chdir(workspace)  # relative outputs ("-o out") would land here: checked below
    # a HOME without the machine's ~/.ssh (onnxruntime writes ~/.cache/Microsoft there: outside the workspace)
    monkeypatch.setenv("HOME", str(workspace.parent / f"{workspace.name}-home"))
    tmp = Path(tempfile.mkdtemp(prefix="corpus-tmp-"))  # a private $TMPDIR: others' temporaries do not count
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    before = snapshot(workspace)
    r = CliRunner().invoke(main, args, input=STDIN.get(name, ""))
    out = r.output
    assert r.exit_code == code, (r.exit_code, out)
    assert "Traceback" not in out and r.exception is None or isinstance(r.exception, SystemExit), out
    errors = [ln for ln in r.stderr.splitlines() if "rror: " in ln]  # "Error: …" or "edgelstm run: error: …"
    assert len(errors) == 1, r.stderr
    assert fragment in errors[0], errors[0]
    assert snapshot(workspace) == before, "the workspace changed"
    left = sorted(p.name for p in tmp.iterdir() if "edgelstm" in p.name)  # onnxruntime leaves a .ses of its own
    shutil.rmtree(tmp)
    assert not left, f"temporaries left behind: {left}"
    assert not os.path.exists("/proc/x")


def test_corpus_counts():
    """≥ 150 cases over every command (the issue's bar), no id twice."""
    from edgelstm.cli import main

    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 150
    commands = {i.split("/")[0] for i in ids} - {"top"}
    import click

    assert commands == set(main.list_commands(click.Context(main)))


# ---- property-based fuzzing of the training readers (edgelstm/data/dataset.py) ------------------------------------
def check_loaded(ds) -> None:
    """What a reader returns is usable: finite float32 samples (NaN only as variable-length padding), labels per row."""
    parts = [ds.windows.X] if ds.windows is not None else [r.x for r in ds.recordings]
    for X in parts:
        assert X.dtype == np.float32 and not np.isinf(X).any()
    if ds.windows is not None and ds.labels:
        assert (
            len(ds.windows.y) == len(ds.windows.X) and 0 <= ds.windows.y.min() and ds.windows.y.max() < len(ds.labels)
        )
    for r in ds.recordings:
        assert np.isfinite(r.x).all()
        if ds.labels and r.y is not None:
            # a recording all of whose rows --nan drop removed is empty; training then refuses it in one line
            assert len(r.y) == len(r.x) and (not len(r.y) or (0 <= r.y.min() and r.y.max() < len(ds.labels)))


@pytest.mark.filterwarnings("ignore")
def test_train_csv_reader_fuzz(tmp_path):
    """Any CSV text: a Dataset of finite samples, or an InputError (one line, the file named) — nothing else."""
    hyp = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    from edgelstm.data.dataset import ColumnSpec, load
    from edgelstm.errors import InputError

    cells = st.sampled_from(
        ["1", "-2.5", "3e38", "1e39", "nan", "inf", "", "x", "walk", "\ufeff", '"', "1_0", "r1", "r2", " ", "0x1"]
    )
    rows = st.lists(st.lists(cells, min_size=1, max_size=5).map(",".join), max_size=8)
    header = st.sampled_from(["a,b,label", "recording,a,b,label", "label", "a,a,label", "recording,time,a,label", ""])
    path = tmp_path / "f.csv"

    @hyp.settings(max_examples=300, deadline=None, database=None)
    @hyp.given(
        header, rows, st.sampled_from(["classify", "regress"]), st.sampled_from(["error", "drop", "interpolate"])
    )
    def check(head, body, task, nan):
        path.write_text("\n".join([head, *body]) + "\n")
        try:
            ds = load(path, ColumnSpec(task=task, nan=nan))
        except InputError as ex:
            assert "\n" not in str(ex) and str(path) in str(ex), str(ex)
            return
        check_loaded(ds)

    check()


@pytest.mark.filterwarnings("ignore")
def test_train_npz_reader_fuzz(tmp_path):
    """Any NPZ of arrays named like the reader's (X, y, lengths, channels, groups, subjects, labels), of any shape
    and dtype (objects need pickle: refused): a Dataset, or an InputError naming the file — nothing else."""
    hyp = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    from edgelstm.data.dataset import ColumnSpec, load
    from edgelstm.errors import InputError

    dims = st.lists(st.integers(0, 4), min_size=0, max_size=4)
    kinds = st.sampled_from(["f4", "f8", "i8", "u1", "bool", "U2", "O", "nan", "inf"])

    def array(shape, kind, rng):
        n = int(np.prod(shape)) if shape else 1
        if kind == "O":
            return np.array([object()] * n, dtype=object).reshape(shape)
        if kind == "U2":
            return rng.choice(np.array(["a", "b", "1"]), size=shape)
        v = rng.integers(-1, 3, size=shape).astype("f8")
        if kind in ("nan", "inf") and n:
            v.flat[0] = np.nan if kind == "nan" else np.inf
            return v
        return v.astype(kind if kind not in ("nan", "inf") else "f8")

    path = tmp_path / "f.npz"
    names = ["X", "y", "lengths", "channels", "groups", "subjects", "labels"]

    @hyp.settings(max_examples=300, deadline=None, database=None)
    @hyp.given(
        st.dictionaries(st.sampled_from(names), st.tuples(dims, kinds), max_size=5),
        st.sampled_from(["classify", "regress", "forecast"]),
        st.integers(0, 2**16),
    )
    def check(spec, task, seed):
        rng = np.random.default_rng(seed)
        np.savez(path, **{k: array(tuple(d), kind, rng) for k, (d, kind) in spec.items()})
        try:
            ds = load(path, ColumnSpec(task=task))
        except InputError as ex:
            assert "\n" not in str(ex) and str(path) in str(ex), str(ex)
            return
        check_loaded(ds)

    check()
