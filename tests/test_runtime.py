"""The device runtime: runner fidelity against the offline Keras model, windowed runs, metadata errors, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke, one_line_error, run_module

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


@pytest.mark.parametrize("compand", [{"center": [0.0], "scale": [0.1]}, {"center": "x"}, [1.0]])
def test_a_compander_that_does_not_fit_the_channels_is_refused_by_name(models, tmp_path, compand):
    _, _, path = models["lstm"]
    bad = tmp_path / "m.tflite"
    _rewrite_metadata(path, bad, lambda m: m["normalization"].update(compand=compand))
    with pytest.raises(MetadataError) as ex:
        Runner().open(bad)
    assert str(ex.value) == (
        f"{bad}: model metadata's normalization.compand needs a center and a scale per mean ({len(MEAN)})"
    )


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


def test_bench_json_reports_runner_and_both_public_api_baselines(models):
    """One run: the runner, the plain set_tensor/invoke/get_tensor loop and invoke() alone, each with the
    benchmark_model statistics; ratios positive and the quotients of the statistics they name."""
    _, _, path = models["gru"]
    r = invoke("bench", path, "--count", "50", "--warmup", "5", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (d["unit"], d["backend"], d["baseline_note"]) == ("step", "litert", None)
    assert d["model_bytes"] == path.stat().st_size and d["peak_rss_kb"] > 0
    for name in ("runner", "plain", "invoke"):
        s = d[name]
        assert s["count"] == 50 and s["std_us"] >= 0
        assert s["min_us"] <= s["median_us"] <= s["p99_us"] <= s["max_us"]
        assert s["per_s_median"] == pytest.approx(1e6 / s["median_us"])
        assert s["per_s_mean"] == pytest.approx(1e6 / s["mean_us"])
    for stat in ("median", "mean"):
        q = d["ratios"][stat]
        assert q["runner_vs_plain"] == pytest.approx(d["runner"][f"{stat}_us"] / d["plain"][f"{stat}_us"])
        assert q["runner_vs_invoke"] == pytest.approx(d["runner"][f"{stat}_us"] / d["invoke"][f"{stat}_us"])
        assert q["plain_vs_invoke"] == pytest.approx(d["plain"][f"{stat}_us"] / d["invoke"][f"{stat}_us"])
        assert all(v > 0 for v in q.values())


def test_bench_statistics_and_ratios_from_fixed_timings(models, monkeypatch):
    """The timer replaced by fixed per-step times (each step still runs), one round: every figure by hand, and
    the text shows steps/s at the median and at the avg, each beside the statistic it comes from."""
    import itertools

    import edgelstm.runtime.bench as bench_mod

    fixed = itertools.cycle(
        [
            np.array([1000, 9000, 2000, 4000, 3000], np.int64),  # runner, ns: 1, 9, 2, 4, 3 us
            np.array([2500, 500, 1500, 1000, 2000], np.int64),  # plain loop: 2.5, .5, 1.5, 1, 2 us
            np.array([500, 500, 500, 500, 1000], np.int64),  # invoke(): .5, .5, .5, .5, 1 us
        ]
    )

    def fake_time(fn, count):
        for i in range(count):
            fn(i)
        return next(fixed)

    monkeypatch.setattr(bench_mod, "_time", fake_time)
    monkeypatch.setattr(bench_mod, "ROUNDS", 1)
    _, _, path = models["gru"]
    r = invoke("bench", path, "--count", "5", "--warmup", "1", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    # sorted runner times 1, 2, 3, 4, 9 us: median 3, mean 3.8, std sqrt(((-2.8)²+(-1.8)²+(-.8)²+.2²+5.2²)/5)
    # = sqrt(38.8/5) = 2.7857, p99 = 4 + 0.96 * (9 - 4) = 8.8
    assert d["runner"] == pytest.approx(
        {
            "count": 5,
            "min_us": 1.0,
            "median_us": 3.0,
            "mean_us": 3.8,
            "std_us": (38.8 / 5) ** 0.5,
            "p99_us": 8.8,
            "max_us": 9.0,
            "per_s_median": 1e6 / 3,
            "per_s_mean": 1e6 / 3.8,
        }
    )
    # plain: median 1.5, mean 1.5, std sqrt(2.5/5); invoke: median .5, mean .6, std sqrt(.2/5)
    assert (d["plain"]["median_us"], d["plain"]["mean_us"]) == pytest.approx((1.5, 1.5))
    assert d["plain"]["std_us"] == pytest.approx(0.5**0.5)
    assert (d["invoke"]["median_us"], d["invoke"]["mean_us"], d["invoke"]["std_us"]) == pytest.approx((0.5, 0.6, 0.2))
    assert d["ratios"]["median"] == pytest.approx(
        {"runner_vs_plain": 2.0, "runner_vs_invoke": 6.0, "plain_vs_invoke": 3.0}
    )
    assert d["ratios"]["mean"] == pytest.approx(
        {"runner_vs_plain": 3.8 / 1.5, "runner_vs_invoke": 3.8 / 0.6, "plain_vs_invoke": 2.5}
    )
    r = invoke("bench", path, "--count", "5", "--warmup", "1")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert "Init: " in lines[2] and "First inference: " in lines[2] and "Warm-up: 1 steps" in lines[2]
    assert (
        "edgelstm Runner           per step: count=5 avg=3.8 std=2.8 min=1.0 median=3.0 p99=8.8 max=9.0 us; "
        "333333 steps/s at the median, 263158 at the avg" in lines
    )
    assert (
        "plain set/invoke/get loop per step: count=5 avg=1.5 std=0.7 min=0.5 median=1.5 p99=2.5 max=2.5 us; "
        "666667 steps/s at the median, 666667 at the avg" in lines
    )
    assert (
        "invoke() alone            per step: count=5 avg=0.6 std=0.2 min=0.5 median=0.5 p99=1.0 max=1.0 us; "
        "2000000 steps/s at the median, 1666667 at the avg" in lines
    )
    assert "ratios (median): runner 2.00x the plain loop, 6.00x invoke() alone; plain loop 3.00x invoke()" in lines
    assert "ratios (avg): runner 2.53x the plain loop, 6.33x invoke() alone; plain loop 2.50x invoke()" in lines


def test_bench_takes_target_and_delegate_as_run_does(models):
    """`--target` gives runtime and threads from the profile (raspberrypi4: LiteRT, 4 threads; --threads wins);
    `--delegate edgetpu` without an Edge TPU is run's one-line error, exit 2."""
    _, _, path = models["gru"]
    r = invoke("bench", path, "--count", "5", "--warmup", "1", "--target", "raspberrypi4-aarch64", "--json")
    assert r.exit_code == 0, r.output
    assert (json.loads(r.stdout)["backend"], json.loads(r.stdout)["threads"]) == ("litert", 4)
    r = invoke("bench", path, "--count", "5", "--warmup", "1", "--target", "raspberrypi4-aarch64", "--threads", "2")
    assert "runtime: litert, 2 thread(s)" in r.stdout
    err = one_line_error(invoke("bench", path, "--count", "5", "--delegate", "edgetpu"))
    assert "Edge TPU" in err


def test_bench_windowed_model_times_windows(models):
    """A windowed BiLSTM: per window, the baselines invoking once per window sample as the runner does."""
    _, _, path = models["bilstm"]
    r = invoke("bench", path, "--count", "5", "--warmup", "1", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["unit"] == "window" and d["plain"]["count"] == d["invoke"]["count"] == 5
    r = invoke("bench", path, "--count", "5", "--warmup", "1")
    assert "edgelstm Runner           per window: count=5 " in r.stdout and "ratios (median): " in r.stdout
