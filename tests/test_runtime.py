"""The device runtime: runner fidelity against the offline Keras model, windowed runs, metadata errors, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke, run_module

from edgelstm.runtime import MetadataError, Runner, RuntimeUnavailable

MEAN, STD = [1.0, -2.0, 0.5], [2.0, 0.5, 1.5]
LABELS = ["a", "b", "c", "d"]
T = 20


def make_step(tiny_model, out: Path, name: str, **kw):
    """(cfg, tf_keras sequence model, path of its float step .tflite with embedded metadata)."""
    from edgelstm.export.tflite import step_tflite
    from edgelstm.models.step import build_step_model

    cfg, model = tiny_model(**{"window": T, "layers": 1, **kw})
    cfg.norm_mean, cfg.norm_std = MEAN, STD
    cfg.channels, cfg.sample_rate = ["ax", "ay", "az"], 50.0
    if cfg.task == "classify":
        cfg.labels = LABELS
    else:
        cfg.target_mean, cfg.target_std = [10.0] * cfg.n_outputs, [3.0] * cfg.n_outputs
    path = out / f"{name}.tflite"
    path.write_bytes(step_tflite(build_step_model(cfg, model)))
    return cfg, model, path


def recording(n: int = 120, seed: int = 1) -> np.ndarray:
    """Raw (un-normalized) samples [n, 3] around the model's normalization statistics."""
    rng = np.random.default_rng(seed)
    return (np.asarray(MEAN) + np.asarray(STD) * rng.normal(0, 1, (n, 3))).astype(np.float32)


def offline(cfg, model, raw: np.ndarray, starts) -> np.ndarray:
    """The offline Keras model on each window of the raw recording, in the outputs' units."""
    x = (raw - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    y = model(np.stack([x[s : s + T] for s in starts]), training=False).numpy()
    if cfg.task != "classify":
        y = y * np.asarray(cfg.target_std, np.float32) + np.asarray(cfg.target_mean, np.float32)
    return y


CASES = {
    "lstm": dict(arch="lstm"),
    "gru": dict(arch="gru"),
    "bilstm": dict(arch="bilstm"),
    "lstm2-regress": dict(arch="lstm", layers=2, task="regress", n_outputs=2),
    "conv-gru": dict(arch="gru", conv=[[4, 5]]),
    "frame5-lstm": dict(arch="lstm", frame=5),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from conftest import _tiny_model

    out = tmp_path_factory.mktemp("step")
    return {name: make_step(_tiny_model, out, name, **kw) for name, kw in CASES.items()}


@pytest.fixture(scope="module")
def raw():
    return recording(120)


@pytest.mark.parametrize("case", ["lstm", "gru", "lstm2-regress", "conv-gru", "frame5-lstm"])
def test_streaming_equals_offline_keras(models, raw, case):
    """Fresh state per window (as in training), then one step per sample: the output after each window's last
    sample is the offline model's output on that window (float ≤ 1e-5), de-normalized for regression."""
    cfg, model, path = models[case]
    runner = Runner()
    info = runner.open(path)
    assert (info.task, info.n_features, info.kind) == (cfg.task, 3, "step")
    starts = [0, 17, 60, 100]
    got = []
    for s in starts:
        runner.reset()
        got.append(list(runner.stream(raw[s : s + T]))[-1].values)
    assert np.abs(np.array(got) - offline(cfg, model, raw, starts)).max() <= 1e-5


@pytest.mark.parametrize("case", ["bilstm", "gru"])
def test_windowed_run_labels_window_centres_with_lookahead(models, raw, case):
    cfg, model, path = models[case]
    runner = Runner(window=T, hop=7, rate=50.0)
    runner.open(path)
    res = list(runner.stream(raw))
    starts = list(range(0, len(raw) - T + 1, 7))
    assert [r.t for r in res] == [s + T // 2 for s in starts]
    assert {(r.lookahead, r.lookahead_ms) for r in res} == {(T - 1 - T // 2, 1000.0 * (T - 1 - T // 2) / 50.0)}
    ref = offline(cfg, model, raw, starts)
    assert np.abs(np.array([r.values for r in res]) - ref).max() <= 1e-5
    assert [r.label for r in res] == [LABELS[i] for i in ref.argmax(1)]


def test_bilstm_step_model_runs_windowed_by_default(models, raw):
    """A BiLSTM needs the future: the runner windows it with the model's own window and stride."""
    cfg, model, path = models["bilstm"]
    runner = Runner()
    runner.open(path)
    assert (runner.windowed, runner.window, runner.hop) == (True, T, cfg.stride)
    res = list(runner.stream(raw[:40]))
    assert [r.t for r in res] == [s + T // 2 for s in range(0, 40 - T + 1, cfg.stride)]


def test_stream_every_k_and_state_carry(models, raw):
    _, _, path = models["lstm"]
    a = Runner()
    a.open(path)
    full = [r.values for r in a.stream(raw[:30])]
    b = Runner(every=4)
    b.open(path)
    sparse = list(b.stream(raw[:30]))
    assert [r.t for r in sparse] == list(range(3, 30, 4))
    assert np.array_equal(np.array([r.values for r in sparse]), np.array(full)[3::4])


def test_reset_after_silence_restarts_the_state(models, raw):
    _, _, path = models["lstm"]
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


def _rewrite_metadata(src: Path, dst: Path, change) -> None:
    from edgelstm.modelfile.read import read_metadata
    from edgelstm.modelfile.write import add_tflite_metadata

    meta = read_metadata(src)
    change(meta)
    dst.write_bytes(add_tflite_metadata(src.read_bytes(), meta))


def test_missing_metadata_is_named(models, tmp_path):
    _, _, path = models["lstm"]
    bad = tmp_path / "m.tflite"
    _rewrite_metadata(path, bad, lambda m: m.update(labels=[], normalization={"mean": MEAN, "std": []}))
    with pytest.raises(MetadataError) as ex:
        Runner().open(bad)
    assert str(ex.value) == f"{bad}: model metadata is missing normalization.std, labels"


def test_edgetpu_delegate_says_what_to_install_when_libedgetpu_is_absent(models):
    """The real load attempt (no mock): it can only fail where libedgetpu is not installed, so skip where it is."""
    import ctypes.util

    if ctypes.util.find_library("edgetpu"):
        pytest.skip("libedgetpu is installed here")
    _, _, path = models["lstm"]
    with pytest.raises(RuntimeUnavailable, match=r"Coral Edge TPU delegate \(libedgetpu.so.1\) is not installed"):
        Runner(delegate="edgetpu").open(path)


def test_litert_without_default_delegates_gives_same_outputs(models, raw):
    _, _, path = models["gru"]
    a, b = Runner(), Runner(no_default_delegates=True)
    a.open(path)
    b.open(path)
    ya = np.array([r.values for r in a.stream(raw[:40])])
    yb = np.array([r.values for r in b.stream(raw[:40])])
    assert np.abs(ya - yb).max() <= 1e-5


def test_run_cli_stdin_json_and_csv(models, raw, tmp_path):
    _, _, path = models["lstm"]
    rec = tmp_path / "rec.csv"
    rec.write_text("time,ax,ay,az\n" + "".join(f"{i},{a},{b},{c}\n" for i, (a, b, c) in enumerate(raw[:20])))
    r = invoke("run", path, f"file:{rec}", "--format", "csv")
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "t,label,score_a,score_b,score_c,score_d"
    assert len(lines) == 21
    runner = Runner()
    runner.open(path)
    ref = [x.values for x in runner.stream(raw[:20])]
    got = np.array([[float(v) for v in ln.split(",")[2:]] for ln in lines[1:]])
    assert np.abs(got - np.array(ref)).max() <= 1e-5
    assert r.stderr.strip().endswith("edgelstm run: 20 samples, 0 skipped, 20 outputs (source closed)")


def test_bad_lines_are_counted_and_skipped_with_one_warning(models):
    _, _, path = models["lstm"]
    text = "1,2,3\n1 2 3\nbad,1,2\n1,2\nnan,1,2\n\n# comment\n4\t5\t6\n" + "x\n" * 50
    p = run_module(path, "-", stdin=text)
    assert p.returncode == 0, p.stderr
    outs = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert [o["t"] for o in outs] == [0, 1, 2]
    assert set(outs[0]) == {"t", "label", "scores"} and outs[0]["label"] in LABELS
    warnings = [ln for ln in p.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == ["warning: stdin line 3: non-numeric value 'bad'; skipped"]
    assert p.stderr.splitlines()[-1] == "edgelstm run: 3 samples, 53 skipped, 3 outputs (source closed)"


def test_strict_makes_bad_lines_fatal(models):
    _, _, path = models["lstm"]
    p = run_module(path, "--strict", stdin="1,2,3\n1,2\n")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == "Error: stdin line 2: expected 3 values, got 2"


def test_run_without_metadata_is_one_line_error(models, tmp_path):
    from tensorflow.lite.tools import flatbuffer_utils

    _, _, path = models["lstm"]
    m = flatbuffer_utils.convert_bytearray_to_object(bytearray(path.read_bytes()))
    m.metadata = []
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(m)))
    r = invoke("run", bare)
    assert r.exit_code == 2
    assert r.stderr.strip() == f"Error: {bare}: has no 'edgelstm' metadata; convert it with `edgelstm convert`"


def test_run_cli_does_not_import_tensorflow(models):
    _, _, path = models["lstm"]
    code = (
        "import sys; from edgelstm.cli import main\n"
        "try:\n    main(['run', sys.argv[1], '--max-samples', '2'])\n"
        "except SystemExit:\n    pass\n"
        "print('TF' if any(m.split('.')[0] in ('tensorflow', 'tf_keras') for m in sys.modules) else 'noTF')"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        input="1,2,3\n1,2,3\n1,2,3\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.stdout.splitlines()[-1] == "noTF", p.stderr
    assert len(p.stdout.splitlines()) == 3


def test_bench_json_reports_runner_and_bare_loop(models):
    _, _, path = models["gru"]
    r = invoke("bench", path, "--count", "50", "--warmup", "5", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (d["runner"]["count"], d["bare"]["count"], d["unit"], d["backend"]) == (50, 50, "step", "litert")
    assert d["model_bytes"] == path.stat().st_size and d["peak_rss_kb"] > 0
    assert d["runner"]["min_us"] <= d["runner"]["median_us"] <= d["runner"]["p99_us"] <= d["runner"]["max_us"]
    assert d["overhead_ratio"] > 0


def test_bench_statistics_and_overhead_ratio_from_fixed_timings(models, monkeypatch):
    """The timer replaced by fixed per-step times (each step still runs): every figure worked out by hand."""
    import itertools

    import edgelstm.runtime.bench as bench_mod

    fixed = itertools.cycle(
        [
            np.array([1000, 9000, 2000, 4000, 3000], np.int64),  # runner, ns: 1, 9, 2, 4, 3 us
            np.array([2500, 500, 1500, 1000, 2000], np.int64),
        ]
    )  # bare loop: 2.5, .5, 1.5, 1, 2 us

    def fake_time(fn, count):
        for i in range(count):
            fn(i)
        return next(fixed)

    monkeypatch.setattr(bench_mod, "_time", fake_time)
    _, _, path = models["gru"]
    r = invoke("bench", path, "--count", "5", "--warmup", "1", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    # sorted runner times 1, 2, 3, 4, 9 us: median 3, mean 19/5 = 3.8, p99 = 4 + 0.96 * (9 - 4) = 8.8
    assert d["runner"] == pytest.approx(
        {
            "count": 5,
            "min_us": 1.0,
            "median_us": 3.0,
            "mean_us": 3.8,
            "p99_us": 8.8,
            "max_us": 9.0,
            "per_s": 263157.894736842,
        }
    )
    # sorted bare times .5, 1, 1.5, 2, 2.5 us: median 1.5, mean 1.5, p99 = 2 + 0.96 * 0.5 = 2.48
    assert d["bare"] == pytest.approx(
        {
            "count": 5,
            "min_us": 0.5,
            "median_us": 1.5,
            "mean_us": 1.5,
            "p99_us": 2.48,
            "max_us": 2.5,
            "per_s": 666666.666666667,
        }
    )
    assert d["overhead_ratio"] == pytest.approx(2.0)  # runner median 3 us / bare median 1.5 us
    r = invoke("bench", path, "--count", "5", "--warmup", "1")
    assert r.exit_code == 0, r.output
    assert "Runner.step per step: count=5 min=1.0 median=3.0 p99=8.8 max=9.0 us, 263158 steps/s" in r.stdout
    assert "bare invoke loop per step: count=5 min=0.5 median=1.5 p99=2.5 max=2.5 us, 666667 steps/s" in r.stdout
    assert "runner overhead: 2.00x the bare loop (median)" in r.stdout


def test_bench_windowed_model_times_windows(models):
    _, _, path = models["bilstm"]
    r = invoke("bench", path, "--count", "5", "--warmup", "1")
    assert r.exit_code == 0, r.output
    assert "runner per window: count=5 " in r.stdout and "bare invoke loop" not in r.stdout


def test_target_options_come_from_the_profile_and_the_command_line_wins():
    from edgelstm.errors import InputError
    from edgelstm.runtime.targetopts import target_options

    assert target_options("raspberrypi4-aarch64", "m.tflite") == {"runtime": "litert", "threads": 4, "delegate": None}
    assert target_options("raspberrypi4-aarch64", "m.tflite", threads=2)["threads"] == 2
    assert target_options("coral-edgetpu", "m.tflite", runtime="litert") == {
        "runtime": "litert",
        "threads": 1,
        "delegate": "edgetpu",
    }
    with pytest.raises(InputError, match="^target coral-edgetpu runs tflite models, not m.onnx$"):
        target_options("coral-edgetpu", "m.onnx")
    with pytest.raises(InputError, match="^unknown target 'nope'; choose one of android-arm64, coral-edgetpu"):
        target_options("nope", "m.tflite")


def test_target_by_name_without_installed_profiles_asks_for_a_path(tmp_path, monkeypatch):
    import edgelstm.targets.profile
    from edgelstm.errors import InputError
    from edgelstm.runtime.targetopts import target_options

    monkeypatch.setattr(edgelstm.targets.profile, "TARGET_DIR", tmp_path / "targets")
    with pytest.raises(
        InputError,
        match=r"^no target profiles are installed here \(.*targets is missing or empty\): "
        r"pass the profile's path, --target path/to/coral-edgetpu.toml$",
    ):
        target_options("coral-edgetpu", "m.tflite")


def test_run_target_coral_says_clearly_that_libedgetpu_is_not_present(models):
    """The real path on a machine without the Edge TPU runtime (no mock): one line naming what to install."""
    import ctypes.util

    if ctypes.util.find_library("edgetpu"):
        pytest.skip("libedgetpu is installed here")
    _, _, path = models["lstm"]
    p = run_module(path, "--target", "coral-edgetpu", stdin="1,2,3\n")
    assert p.returncode == 2 and p.stdout == "" and "Traceback" not in p.stderr, p.stderr
    assert (
        p.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "Error: the Coral Edge TPU delegate (libedgetpu.so.1) is not installed or no Edge TPU is attached: install "
            "the Edge TPU runtime (Debian package libedgetpu1-std) and plug in the device"
        )
    ), p.stderr


def test_run_target_linux_streams_with_the_profiles_interpreter(models):
    _, _, path = models["gru"]
    p = run_module(path, "--target", "linux-x86_64", "--max-samples", "3", stdin="1,2,3\n" * 5)
    assert p.returncode == 0, p.stderr
    assert [json.loads(ln)["t"] for ln in p.stdout.splitlines()] == [0, 1, 2]
