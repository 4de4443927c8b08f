"""The device runtime: runner fidelity against the offline Keras model, windowed runs, metadata errors, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import stepmodels as sm
from conftest import invoke

from edgelstm.runtime import MetadataError, Runner, RuntimeUnavailable


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = tmp_path_factory.mktemp("step")
    return {arch: sm.build(out, arch) for arch in ("lstm", "gru")}


@pytest.fixture(scope="module")
def raw():
    return sm.recording(120)


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_stepping_equals_offline_keras(models, raw, arch):
    seq, path, _ = models[arch]
    runner = Runner()
    info = runner.open(path)
    assert (info.task, info.n_features, info.labels) == ("classify", sm.F, sm.LABELS)
    starts = [0, 17, 60, 100]
    got = []
    for s in starts:
        runner.reset()
        for row in raw[s:s + sm.T]:
            y = runner.step(row)
        got.append(y)
    assert np.abs(np.array(got) - sm.keras_windows(seq, raw, starts)).max() <= 1e-5


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_windowed_run_labels_window_centres_with_lookahead(models, raw, arch):
    seq, path, _ = models[arch]
    runner = Runner(window=sm.T, hop=5, rate=50.0)
    runner.open(path)
    res = list(runner.stream(raw))
    starts = list(range(0, len(raw) - sm.T + 1, 5))
    assert [r.t for r in res] == [s + sm.T // 2 for s in starts]
    assert {(r.lookahead, r.lookahead_ms) for r in res} == {(sm.T - 1 - sm.T // 2, 1000.0 * 5 / 50.0)}
    ref = sm.keras_windows(seq, raw, starts)
    assert np.abs(np.array([r.values for r in res]) - ref).max() <= 1e-5
    assert [r.label for r in res] == [sm.LABELS[i] for i in ref.argmax(1)]


def test_stream_every_k_and_state_carry(models, raw):
    _, path, _ = models["lstm"]
    a = Runner()
    a.open(path)
    full = [r.values for r in a.stream(raw[:30])]
    b = Runner(every=4)
    b.open(path)
    sparse = list(b.stream(raw[:30]))
    assert [r.t for r in sparse] == list(range(3, 30, 4))
    assert np.array_equal(np.array([r.values for r in sparse]), np.array(full)[3::4])


def test_reset_after_silence_restarts_the_state(models, raw):
    _, path, _ = models["lstm"]
    fresh = Runner()
    fresh.open(path)
    first = fresh.step(raw[5])

    def samples():
        yield from raw[:5]
        time.sleep(0.3)
        yield raw[5]

    r = Runner(reset_after=0.1)
    r.open(path)
    out = list(r.stream(samples()))
    assert np.array_equal(out[5].values, first)
    carried = Runner()
    carried.open(path)
    assert not np.allclose(list(carried.stream(raw[:6]))[5].values, first)


def test_missing_metadata_is_named(models, tmp_path):
    _, path, meta = models["lstm"]
    bad = tmp_path / "m.tflite"
    bad.write_bytes(path.read_bytes())
    m = dict(meta)
    del m["labels"]
    m["normalization"] = {"mean": meta["normalization"]["mean"]}
    m["outputs"] = [dict(o, state_input=None) if o["role"] == "state" else o for o in meta["outputs"]]
    Path(str(bad) + ".json").write_text(json.dumps(m))
    with pytest.raises(MetadataError) as ex:
        Runner().open(bad)
    assert str(ex.value) == (f"{bad}: model metadata is missing normalization.std, labels, "
                             "outputs[h0_out].state_input, outputs[c0_out].state_input")


def test_edgetpu_delegate_absent_says_what_to_install(models):
    # libedgetpu is genuinely not installed on this machine: the real load attempt fails
    _, path, _ = models["lstm"]
    with pytest.raises(RuntimeUnavailable, match=r"Coral Edge TPU delegate \(libedgetpu.so.1\) is not installed"):
        Runner(delegate="edgetpu").open(path)


def test_litert_without_default_delegates_gives_same_outputs(models, raw):
    _, path, _ = models["gru"]
    a, b = Runner(), Runner(no_default_delegates=True)
    a.open(path)
    b.open(path)
    ya = np.array([r.values for r in a.stream(raw[:40])])
    yb = np.array([r.values for r in b.stream(raw[:40])])
    assert np.abs(ya - yb).max() <= 1e-5


def test_run_cli_stdin_json_and_csv(models, raw, tmp_path):
    _, path, _ = models["lstm"]
    rec = tmp_path / "rec.csv"
    rec.write_text("time,ax,ay,az\n" + "".join(f"{i},{a},{b},{c}\n" for i, (a, b, c) in enumerate(raw[:20])))
    r = invoke("run", path, f"file:{rec}", "--format", "csv")
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "t,label,score_a,score_b,score_c"
    assert len(lines) == 21
    runner = Runner()
    runner.open(path)
    ref = [x.values for x in runner.stream(raw[:20])]
    got = np.array([[float(v) for v in ln.split(",")[2:]] for ln in lines[1:]])
    assert np.abs(got - np.array(ref)).max() <= 1e-5
    assert r.stderr.strip().endswith("edgelstm run: 20 samples, 0 skipped, 20 outputs (source closed)")


def run_module(*args, stdin: str = "", timeout: float = 60):
    return subprocess.run([sys.executable, "-m", "edgelstm.runtime", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def test_bad_lines_are_counted_and_skipped_with_one_warning(models):
    _, path, _ = models["lstm"]
    text = "1,2,3\n1 2 3\nbad,1,2\n1,2\nnan,1,2\n\n# comment\n4\t5\t6\n" + "x\n" * 50
    p = run_module(path, "-", stdin=text)
    assert p.returncode == 0, p.stderr
    outs = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert [o["t"] for o in outs] == [0, 1, 2]
    assert set(outs[0]) == {"t", "label", "scores"} and outs[0]["label"] in sm.LABELS
    warnings = [ln for ln in p.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == ["warning: stdin line 3: non-numeric value 'bad'; skipped"]
    assert p.stderr.splitlines()[-1] == "edgelstm run: 3 samples, 53 skipped, 3 outputs (source closed)"


def test_strict_makes_bad_lines_fatal(models):
    _, path, _ = models["lstm"]
    p = run_module(path, "--strict", stdin="1,2,3\n1,2\n")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == "Error: stdin line 2: expected 3 values, got 2"


def test_run_without_metadata_is_one_line_error(models, tmp_path):
    _, path, _ = models["lstm"]
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(path.read_bytes())
    r = invoke("run", bare)
    assert r.exit_code == 2
    assert r.stderr.strip().startswith(f"Error: {bare}: ")
    assert "metadata" in r.stderr


def test_run_cli_does_not_import_tensorflow(models):
    _, path, _ = models["lstm"]
    code = ("import sys; from edgelstm.cli import main\n"
            "try:\n    main(['run', sys.argv[1], '--max-samples', '2'])\n"
            "except SystemExit:\n    pass\n"
            "print('TF' if any(m.split('.')[0] in ('tensorflow', 'tf_keras') for m in sys.modules) else 'noTF')")
    p = subprocess.run([sys.executable, "-c", code, str(path)], input="1,2,3\n1,2,3\n1,2,3\n",
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.splitlines()[-1] == "noTF", p.stderr
    assert len(p.stdout.splitlines()) == 3
