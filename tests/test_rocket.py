"""`--arch rocket`: the interpreter counts what training counts, float and int8 agree, and the runner streams it."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import invoke, one_line_error

from edgelstm.runtime import rocket as rk


def waves_npz(path, n=60, lo=40, hi=90, seed=0):
    """Variable-length two-channel sequences whose class is the period of a noisy wave (5, 9 or 15 samples)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(lo, hi + 1, n)
    y = np.arange(n) % 3
    seqs = []
    for i, L in enumerate(lengths):
        t = np.arange(L) + rng.uniform(0, 20)
        wave = np.sin(2 * np.pi * t / (5, 9, 15)[y[i]])
        seqs.append(np.stack([wave, 0.5 * wave**2], axis=1) + 0.3 * rng.normal(size=(L, 2)))
    X = np.concatenate(seqs).astype(np.float32)
    np.savez(path, X=X, lengths=lengths, y=y, labels=np.array(["p5", "p9", "p15"]))
    return path, seqs


def small_model(F=2, K=3, window=40, seed=0):
    """Seed 0: a file from before the 16-bit grid (its grid has no 4th entry: 256 levels); 1: a 16-bit grid."""
    rng = np.random.default_rng(seed)
    dil = rk.dilations(window)
    levels = 256 if seed == 0 else 65536
    grid = [-3.0, 6.0 / (levels - 1), levels // 2] + ([] if seed == 0 else [levels])
    thr = rng.normal(0, 40 * levels / 256, (len(dil), F, len(rk.KERNELS), 2)).astype(np.float32)
    N = thr.size
    return {
        "dilations": dil,
        "skip": rk.skips(dil, whole=seed % 2 == 0),
        "grid": np.array(grid, np.float32),
        "thresholds": thr,
        "mu": rng.uniform(0, 1, N).astype(np.float32),
        "weights": rng.normal(0, 0.05, (N, K)).astype(np.float32),
        "scale": np.ones(K, np.float32),
        "bias": rng.normal(0, 0.1, K).astype(np.float32),
        "temperature": np.float32(2.0),
    }


@pytest.mark.parametrize("seed", [0, 1])  # 0: a sequence counted whole, 8-bit; 1: a fixed window (skips 8·d), 16-bit
def test_the_interpreter_counts_step_by_step_what_training_counts_at_once(tmp_path, seed):
    """The step form (a ring buffer of grid levels, running counts) and the vectorized form training uses give the
    same shares exactly, and the same probabilities, after every step."""
    a = small_model(seed=seed)
    assert (a["skip"] > 0).any() == (seed == 1)
    path = tmp_path / "m.rocket"
    rk.write_rocket(path, {"note": "test"}, a)
    it = rk.RocketInterpreter(path)
    Z = 1.5 * np.random.default_rng(1).normal(size=(57, 2)).astype(np.float32)  # some past the grid
    q = rk.to_grid(Z, a["grid"])
    assert q.max() == rk.grid_levels(a["grid"]) - 1  # the samples reach past the grid: clipped at its top level
    pad = float(a["grid"][2])
    shares = []
    for t in range(len(Z)):
        it.set("x", Z[t : t + 1])
        it.invoke()
        want = rk.shares(q[: t + 1], a["dilations"], pad, a["thresholds"], a["skip"])
        np.testing.assert_array_equal(rk.share_of(it._counts, it._n - a["skip"]), want)
        np.testing.assert_array_equal(it.get("y"), rk.head(want[None], a))
        shares.append(want)
    assert len({s.tobytes() for s in shares}) > 40  # the shares moved: the comparison was not of zeros
    it.reset()
    it.set("x", Z[:1])
    it.invoke()
    want = rk.shares(q[:1], a["dilations"], pad, a["thresholds"], a["skip"])
    np.testing.assert_array_equal(rk.share_of(it._counts, it._n - a["skip"]), want)


def test_a_rocket_file_is_never_unpickled(tmp_path):
    """An object array (what np.load would unpickle) is refused as a damaged model, in one line."""
    bad = tmp_path / "evil.rocket"
    with open(bad, "wb") as fh:
        np.savez(fh, meta=np.array([{"x": 1}], dtype=object))
    err = one_line_error(invoke("evaluate", bad, tmp_path / "none.npz"))
    assert "evil.rocket: not a readable .rocket model (Object arrays cannot be loaded" in err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("rocket")
    train, _ = waves_npz(d / "train.npz")
    test, seqs = waves_npz(d / "test.npz", n=30, seed=7)
    m = d / "m"
    r = invoke("train", train, "--test", test, "--arch", "rocket", "-o", m)
    assert r.exit_code == 0, r.output
    r = invoke("quantize", m, "--mode", "int8", "-o", m / "export")
    assert r.exit_code == 0, r.output
    return d, m, test, seqs


def test_rocket_trains_in_seconds_and_scores_the_test_file(trained):
    d, m, test, _ = trained
    metrics = json.loads((m / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9, metrics["test"]
    assert metrics["split"]["train"]["windows"] == 60  # nothing of DATA held out: nothing watches validation
    cfg = json.loads((m / "config.json").read_text())
    assert cfg["arch"] == "rocket" and cfg["frame"] == 1 and cfg["training"]["input_map"] == "auto"
    assert sorted(p.name for p in m.iterdir()) == [
        "config.json",
        "confusion.png",
        "export",
        "metrics.json",
        "model.rocket",
    ]


def test_rocket_int8_agrees_with_float_and_the_runner_matches_training(trained):
    """The int8 file (int8 head weights) agrees with the float model on ≥ 99 % of sequences; the float file run by
    the device runner step by step gives training's vectorized probabilities within 1e-5."""
    from edgelstm.data.dataset import load
    from edgelstm.evaluate.predict import open_model
    from edgelstm.models.modeldir import load_config
    from edgelstm.train.rocket import predict

    d, m, test, _ = trained
    X = load(test).windows.X
    ref = open_model(m)
    stepped = ref.predict(X)
    _, a = rk.read_rocket(m / "model.rocket")
    np.testing.assert_allclose(stepped, predict(load_config(m), X, a), atol=1e-5)
    q = open_model(m / "export" / "step.int8.rocket").predict(X)
    assert (q.argmax(1) == stepped.argmax(1)).mean() >= 0.99
    report = json.loads((m / "export" / "report.json").read_text())
    assert report["reference"]["file"] == "model.rocket"
    assert report["models"][0]["vs_reference"]["argmax_agreement"] >= 0.99


def test_edgelstm_run_streams_a_rocket_model_as_evaluate_scores_it(trained, tmp_path):
    """Two test sequences, one after the other, through the device CLI (`python -m edgelstm.runtime`, no
    TensorFlow): the last line of each ends on evaluate's prediction for it."""
    d, m, test, seqs = trained
    model = m / "export" / "step.int8.rocket"
    pred = tmp_path / "pred.csv"
    assert invoke("evaluate", model, test, "--predictions", pred).exit_code == 0
    rows = list(csv.DictReader(pred.open()))
    for i in (0, 1):
        lines = "\n".join(",".join(f"{v:.7g}" for v in s) for s in seqs[i]) + "\n"
        code = (
            "import sys, runpy; sys.argv = ['edgelstm-run', sys.argv[1], '-'];"
            "runpy.run_module('edgelstm.runtime', run_name='__main__')"
        )
        out = subprocess.run([sys.executable, "-c", code, str(model)], input=lines, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "the head pools over every sample since the last reset (a rocket model's shares)" in out.stderr
        last = json.loads(out.stdout.strip().splitlines()[-1])
        assert len(out.stdout.strip().splitlines()) == len(seqs[i])
        assert last["label"] == rows[i]["prediction"], (last, rows[i])


def test_rocket_refuses_what_it_has_no_form_for(trained, tmp_path):
    d, m, test, _ = trained
    err = one_line_error(invoke("convert", m, "--to", "tflite", "-o", tmp_path / "c"))
    assert "running means over the whole sequence" in err
    err = one_line_error(invoke("quantize", m, "--mode", "int16x8", "-o", tmp_path / "q"))
    assert "float or int8" in err
    err = one_line_error(
        invoke("train", d / "train.npz", "--arch", "rocket", "--task", "regress", "-o", tmp_path / "r")
    )
    assert "--arch rocket classifies" in err
    err = one_line_error(invoke("train", d / "train.npz", "--arch", "rocket", "--pool", "max", "-o", tmp_path / "p"))
    assert "--conv, --pool and --frame shape the recurrent models" in err


def test_the_default_model_follows_the_data_and_the_options_given(tmp_path):
    """No --arch: windows or sequences given as such (an NPZ) make a rocket model, a fixed window counting only the
    steps whose taps lie inside it; an option only a recurrent model takes (--units) makes an LSTM; a continuous
    recording cut into short windows, or a regressor, an LSTM."""
    from test_splits import windows_npz

    seqs, _ = waves_npz(tmp_path / "v.npz", n=30)
    fixed = windows_npz(tmp_path / "f.npz", n=30, T=40)
    runs = (("rocket", seqs, ()), ("rocket", fixed, ()), ("lstm", seqs, ("--units", "4", "--epochs", "1")))
    for i, (want, data, more) in enumerate(runs):
        r = invoke("train", data, *more, "-o", tmp_path / f"m{i}")
        assert r.exit_code == 0, r.output
        assert json.loads((tmp_path / f"m{i}" / "config.json").read_text())["arch"] == want, (want, more)
    for i, whole in ((0, True), (1, False)):
        _, a = rk.read_rocket(tmp_path / f"m{i}" / "model.rocket")
        assert (a["skip"] == rk.skips(a["dilations"], whole)).all() and (a["skip"] > 0).any() != whole
    from edgelstm.train.fit import default_arch

    assert [default_arch("classify", False, 100), default_arch("classify", False, 1460)] == ["lstm", "rocket"]
    assert default_arch("regress", True, 1460) == "lstm" and default_arch("classify", True, 8) == "lstm"
    err = one_line_error(
        invoke("train", windows_npz(tmp_path / "s.npz", T=8), "--arch", "rocket", "-o", tmp_path / "s")
    )
    assert "windows of 8 samples hold none (use --arch lstm)" in err


def test_distill_refuses_a_rocket_teacher_in_one_line(trained, tmp_path):
    d, m, test, _ = trained
    err = one_line_error(invoke("distill", d / "train.npz", "--teacher", m, "--student", "gru:4", "-o", tmp_path / "s"))
    assert "is a rocket model: its ridge head scores fixed features" in err


def test_inspect_and_check_read_a_rocket_file(trained):
    """inspect shows its arrays and I/O; a target whose profile runs TFLite only says it does not run the format,
    a Raspberry Pi (edgelstm's numpy runtime) does."""
    d, m, test, _ = trained
    f = m / "export" / "step.int8.rocket"
    r = invoke("inspect", f)
    assert r.exit_code == 0, r.output
    assert (
        f"{f}: rocket," in r.output and "input x: float32 [1, 2]" in r.output and "output y: float32 [1, 3]" in r.output
    )
    r = invoke("check", f, "--target", "android-arm64")
    assert r.exit_code == 1
    assert "step.int8.rocket: format rocket is not run by android-arm64 (it runs tflite)" in r.output
    r = invoke("check", f, "--target", "raspberrypi4-aarch64")
    assert r.exit_code == 0, r.output


def test_quantize_for_a_pi_writes_the_rocket_file_and_checks_it(trained, tmp_path):
    d, m, test, _ = trained
    r = invoke("quantize", m, "--target", "raspberrypi4-aarch64", "--no-report", "-o", tmp_path / "q")
    assert r.exit_code == 0, r.output
    assert "step.int8.rocket: passes target raspberrypi4-aarch64" in r.output
    err = one_line_error(invoke("quantize", m, "--target", "android-arm64", "--no-report", "-o", tmp_path / "a"))
    assert "target android-arm64 cannot run rocket models; it runs tflite" in err


def test_the_ridge_head_picks_the_penalty_a_refit_without_each_series_would():
    """The closed-form leave-one-out error (standardized shares, unpenalized intercept) chooses the same penalty as
    refitting without each series in turn, and its folded weights give the standardized fit's scores."""
    from edgelstm.train import rocket as tr

    rng = np.random.default_rng(3)
    y = np.arange(30) % 3
    Fx = rng.uniform(0, 1, (30, 12)) * rng.uniform(0.001, 1, 12)  # some shares barely move: the spread floor
    Fx[:, :3] += 0.3 * (y[:, None] == np.arange(3))
    a = tr.ridge(Fx, y, 3)
    sd = np.maximum(Fx.std(axis=0), tr.SPREAD_FLOOR)
    Z = (Fx - Fx.mean(axis=0)) / sd
    Y = np.where(y[:, None] == np.arange(3), 1.0, -1.0)

    def fit(Zs, Ys, alpha):  # the textbook ridge with an intercept, solved directly
        m, c = Zs.mean(axis=0), Ys.mean(axis=0)
        W = np.linalg.solve((Zs - m).T @ (Zs - m) + alpha * np.eye(Zs.shape[1]), (Zs - m).T @ (Ys - c))
        return W, c - m @ W

    def loo(alpha):
        err = 0.0
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            W, b = fit(Z[keep], Y[keep], alpha)
            err += float(((Z[i] @ W + b - Y[i]) ** 2).sum())
        return err

    errors = [loo(alpha) for alpha in tr.ALPHAS]
    assert a["alpha"] == tr.ALPHAS[int(np.argmin(errors))]
    assert len(set(np.round(errors, 6))) > 5  # the penalty mattered
    W, b = fit(Z, Y, a["alpha"])
    np.testing.assert_allclose((Fx - a["mu"]) @ a["weights"] + a["bias"], Z @ W + b, atol=1e-4)


def test_rocket_cross_validates_then_trains_on_all_the_data(tmp_path):
    """`--cv 3` over NPZ sequences is a rocket model's (no recurrent option given): three fold models scored on
    sequences they never saw, then the saved model on all 60, its test figures the pooled out-of-fold ones."""
    train, _ = waves_npz(tmp_path / "train.npz")
    m = tmp_path / "m"
    r = invoke("train", train, "--cv", "3", "--shares", "600", "-o", m)
    assert r.exit_code == 0, r.output
    metrics = json.loads((m / "metrics.json").read_text())
    cv = metrics["cv"]
    assert cv["folds"] == 3 and cv["by"] == "recording" and sum(f["n"] for f in cv["per_fold"]) == 60
    assert cv["accuracy"]["mean"] >= 0.85 and cv["accuracy"]["sd"] <= 0.15, cv
    assert metrics["test"]["n"] == 60 and abs(metrics["test"]["accuracy"] - cv["accuracy"]["mean"]) < 0.05
    assert metrics["split"]["train"]["windows"] == 60 and set(metrics["split"]) == {"train"}
    assert metrics["protocol"].startswith("leave-recording-out cross-validation, 3 folds")
    cfg = json.loads((m / "config.json").read_text())
    assert cfg["arch"] == "rocket" and cfg["units"] == rk.n_shares(cfg["window"], 2, 600)
    assert f"cross-validated accuracy {cv['accuracy']['mean']:.3f}" in r.output
    # it trained on every sequence: no split is rebuilt to score it (that would score data it trained on)
    r = invoke("quantize", m, "--mode", "int8")
    assert r.exit_code == 0, r.output
    assert "no report: the model trained on all of its data (cross-validated or tuned, no --test file)" in r.stdout
    assert (m / "step.int8.rocket").is_file() and not (m / "report.json").exists()
    err = one_line_error(invoke("evaluate", m, "--split", "test"))
    assert err == f"Error: {m}: training held out no test split (cross-validated or tuned); give DATA"


def test_shares_size_only_a_rocket_model(tmp_path):
    train, _ = waves_npz(tmp_path / "train.npz")
    err = one_line_error(invoke("train", train, "--arch", "lstm", "--shares", "600", "-o", tmp_path / "m"))
    assert err == "Error: --shares sizes a rocket model (--arch rocket)"
    assert not (tmp_path / "m").exists()


def test_tune_starts_from_the_rocket_default_and_writes_its_int8_model(tmp_path):
    """Over NPZ windows train's default is a rocket model, so tune's first trial is that one: cross-validated by
    recording, scored as its int8 file through the runner, then trained on all the data."""
    from edgelstm.modelfile.inspect import inspect_model

    train, _ = waves_npz(tmp_path / "train.npz")
    out = tmp_path / "best"
    r = invoke("tune", train, "--trials", "1", "--folds", "2", "-o", out)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(out / "tune.csv")))
    assert [row["trial"] for row in rows] == ["rocket4000"] and rows[0]["status"] == "ok"
    assert 0.85 <= float(rows[0]["int8_accuracy"]) <= 1 and float(rows[0]["step_us"]) > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"].startswith("tune, 1 trials: out-of-fold int8") and metrics["test"]["n"] == 60
    assert abs(metrics["test"]["accuracy"] - float(rows[0]["int8_accuracy"])) < 0.05
    assert int(rows[0]["params"]) == metrics["params"]  # the size it was budgeted by is the size it has
    assert inspect_model(out / "step.int8.rocket")["metadata"]["quantization"] == "int8"


def test_a_rocket_models_held_out_split_is_found_again_by_evaluate(tmp_path):
    """Trained without --test, a rocket model holds out 15 % of the sequences as test and none for validation
    (nothing is chosen on it); `evaluate --split test`, which rebuilds the split with a validation share, finds the
    same test windows (the test share is drawn first) and the same confusion."""
    train, _ = waves_npz(tmp_path / "train.npz", n=90)
    m = tmp_path / "m"
    assert invoke("train", train, "--arch", "rocket", "--shares", "600", "-o", m).exit_code == 0
    stored = json.loads((m / "metrics.json").read_text())
    assert set(stored["split"]) == {"train", "test"}
    assert stored["split"]["train"]["windows"] + stored["test"]["n"] == 90 and stored["test"]["n"] >= 12
    r = invoke("evaluate", m, "--split", "test")
    assert r.exit_code == 0, r.output
    t = stored["test"]
    assert r.stdout.splitlines()[0] == (
        f"{m}: accuracy {t['accuracy']:.3f}, macro-F1 {t['macro_f1']:.3f} ({t['n']} windows, the held-out test split)"
    )
    rows = [ln.split() for ln in r.stdout.splitlines()[3 : 3 + len(t["labels"])]]
    assert [[int(v) for v in row[1:]] for row in rows] == t["confusion"]


# ------------------------------------------------------------------------------------- distill into a rocket model


def test_a_rocket_teacher_distills_into_a_smaller_rocket_model(trained, tmp_path):
    """The student has fewer shares than its teacher and streams like any rocket model; with --alpha 1 (no weight on
    the teacher) it is exactly `train --shares N` on the same data and seed, and the default mix moves its head."""
    d, m, test, _ = trained
    alone = tmp_path / "alone"
    r = invoke("train", d / "train.npz", "--test", test, "--shares", "200", "-o", alone)
    assert r.exit_code == 0, r.output
    students = {}
    for alpha in ("1", "0.5"):
        out = tmp_path / f"s{alpha}"
        r = invoke("distill", d / "train.npz", "--teacher", m, "--student", "rocket:200", "--alpha", alpha, "-o", out)
        assert r.exit_code == 0, r.output
        students[alpha] = out
    _, a_alone = rk.read_rocket(alone / "model.rocket")
    _, a_pure = rk.read_rocket(students["1"] / "model.rocket")
    _, a_mixed = rk.read_rocket(students["0.5"] / "model.rocket")
    _, a_teacher = rk.read_rocket(m / "model.rocket")
    for key in ("thresholds", "weights", "bias", "mu"):
        np.testing.assert_array_equal(a_pure[key], a_alone[key])
    np.testing.assert_array_equal(a_mixed["thresholds"], a_alone["thresholds"])
    assert not np.allclose(a_mixed["weights"], a_alone["weights"])
    assert a_mixed["thresholds"].size < a_teacher["thresholds"].size / 2
    report = json.loads((students["0.5"] / "distill_report.json").read_text())
    teacher, student, base = report["models"]
    assert student["model"] == f"rocket:{a_mixed['thresholds'].size}" and student["streams"]
    assert report["param_ratio"] == pytest.approx(a_teacher["thresholds"].size / a_mixed["thresholds"].size)
    assert student["test"]["accuracy"] >= 0.9 and student["int8_bytes"] < teacher["int8_bytes"]
    alone_test = json.loads((alone / "metrics.json").read_text())["test"]
    assert base["test"] == {k: alone_test[k] for k in ("accuracy", "macro_f1")}  # the baseline is that model


@pytest.mark.parametrize(
    "student, teacher, message",
    [
        ("gru:8", "rocket", "is a rocket model: its ridge head scores fixed features, with no logits over time"),
        ("rocket:200x2", "rocket", "a rocket student is rocket:SHARES, without layers, --conv or --pool"),
        ("rocket:200", "gru", "a rocket student learns a rocket teacher's scores on the same shares' kind"),
    ],
)
def test_distill_refuses_a_student_of_the_other_kind(trained, tmp_path, student, teacher, message):
    d, m, test, _ = trained
    if teacher == "gru":
        m = tmp_path / "gru"
        r = invoke("train", d / "train.npz", "--test", test, "--arch", "gru", "--units", "4", "--epochs", "1", "-o", m)
        assert r.exit_code == 0, r.output
    err = one_line_error(invoke("distill", d / "train.npz", "--teacher", m, "--student", student, "-o", tmp_path / "s"))
    assert message in err and err.startswith("Error: "), err
    assert not (tmp_path / "s").exists()
