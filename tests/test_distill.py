"""Distillation: a BiLSTM teacher into a small causal student, its report, and each mismatch a user can cause."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from conftest import invoke, one_line_error

from edgelstm.models.cost import macs_per_step

TEACHER = ("--arch", "bilstm", "--units", "32", "--layers", "2")  # 35,076 parameters
STUDENT = "gru:32"  # 3,972 parameters: 1/8.8 of the teacher


@pytest.fixture(scope="session")
def bilstm_teacher(tmp_path_factory, activity_csv):
    out = tmp_path_factory.mktemp("runs") / "bilstm32x2"
    r = invoke("train", activity_csv, *TEACHER, "-o", out)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="session")
def distilled(tmp_path_factory, activity_csv, bilstm_teacher):
    out = tmp_path_factory.mktemp("runs") / "gru32_student"
    r = invoke("distill", activity_csv, "--teacher", bilstm_teacher, "--student", STUDENT, "-o", out)
    assert r.exit_code == 0, r.output
    return out, r


def test_small_student_keeps_97_percent_of_the_bilstm_teacher(distilled):
    out, _ = distilled
    report = json.loads((out / "distill_report.json").read_text())
    teacher, student, baseline = report["models"]
    assert (teacher["role"], student["role"], baseline["role"]) == ("teacher", "student", "baseline")
    assert (teacher["model"], student["model"], baseline["model"]) == ("bilstm:32x2", "gru:32x1", "gru:32x1")
    assert (teacher["params"], student["params"]) == (35076, 3972)
    assert student["params"] * 8 <= teacher["params"]
    assert student["test"]["accuracy"] >= 0.97 * teacher["test"]["accuracy"], report
    assert report["student_vs_teacher"] >= 0.97
    assert report["split_matches_teacher"] is True
    assert not teacher["streams"] and student["streams"] and baseline["streams"]


def test_report_shows_the_baseline_without_teacher(distilled):
    out, r = distilled
    report = json.loads((out / "distill_report.json").read_text())
    _, student, baseline = report["models"]
    assert baseline["epochs_run"] >= 1 and 0 <= baseline["test"]["accuracy"] <= 1
    assert baseline["params"] == student["params"] and baseline["macs_per_step"] == student["macs_per_step"]
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["teacher", "student", "(distilled)", "baseline", "(no", "teacher)"]
    acc = next(line for line in lines if line.startswith("held-out accuracy")).split()[2:]
    assert [float(v) for v in acc] == [round(m["test"]["accuracy"], 4) for m in report["models"]]
    assert f"baseline without teacher: {report['baseline_vs_teacher']:.1%}" in r.stdout
    # int8 step models measured for the streamable models; the stacked BiLSTM teacher has none
    teacher, student, baseline = report["models"]
    assert teacher["int8_bytes"] is None and teacher["int8_note"] == "n/a (no step model: stacked BiLSTM)"
    assert 2_000 < student["int8_bytes"] < 4 * student["params"]
    assert math.isfinite(student["step_latency_us"]) and student["step_latency_us"] > 0  # its speed: bench/
    assert (baseline["int8_bytes"], baseline["step_latency_us"]) == (student["int8_bytes"], student["step_latency_us"])
    size_row = next(line for line in lines if line.startswith("int8 size"))
    assert size_row.count(f"{student['int8_bytes']:,} B") == 2 and "stacked BiLSTM" in size_row
    assert (out / "distill_report.png").stat().st_size > 10_000


def test_student_is_a_plain_model_directory(distilled, activity_csv, bilstm_teacher):
    """No Distiller wrapper: reloading the student and scoring it reproduces the report's figure."""
    from edgelstm.data.dataset import ColumnSpec, load
    from edgelstm.data.prepare import prepare
    from edgelstm.evaluate.metrics import score
    from edgelstm.models.modeldir import load_keras
    from edgelstm.train.fit import predict

    out, _ = distilled
    cfg, model = load_keras(out)
    assert [layer.name for layer in model.layers] == ["x", "rnn0", "logits", "probs"]
    tcfg, _ = load_keras(bilstm_teacher)
    assert (cfg.arch, cfg.units, cfg.layers, cfg.window, cfg.stride) == ("gru", 32, 1, tcfg.window, tcfg.stride)
    assert cfg.labels == tcfg.labels and cfg.training["distill"]["temperature"] == 4.0
    probs = predict(model, cfg, np.zeros((2, cfg.window, cfg.n_features), np.float32) + cfg.norm_mean)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)  # ends in the softmax, not in logits
    prep = prepare(load(activity_csv, ColumnSpec()), cfg.window, cfg.stride, cfg.task, seed=cfg.training["seed"])
    m = score(cfg, prep.test, predict(model, cfg, prep.test.X))
    report = json.loads((out / "distill_report.json").read_text())
    assert m["accuracy"] == report["models"][1]["test"]["accuracy"]
    assert json.loads((out / "metrics.json").read_text())["test"]["accuracy"] == m["accuracy"]
    assert {"config.json", "model.keras", "metrics.json", "history.json", "confusion.png"} <= {
        p.name for p in out.iterdir()
    }


def test_macs_per_step_against_hand_counts():
    # LSTM 6→32, head 32→4: 4·32·(6+32) kernels + 3·32 gate products + 32·4 head
    assert macs_per_step("lstm", 32, 1, 6, 4) == 4864 + 96 + 128 == 5088
    # GRU 6→16: 3·16·(6+16) + 3·16 + 16·4
    assert macs_per_step("gru", 16, 1, 6, 4) == 1056 + 48 + 64 == 1168
    # BiLSTM 32x2 concat: layer 1 both directions 2·(4·32·38 + 96); layer 2 sees 64 inputs; head 64·4
    assert macs_per_step("bilstm", 32, 2, 6, 4) == 2 * (4864 + 96) + 2 * (4 * 32 * 96 + 96) + 256 == 34944
    # merge sum: layer 2 and the head see 32 inputs
    assert macs_per_step("bilstm", 32, 2, 6, 4, merge="sum") == 9920 + 2 * (4 * 32 * 64 + 96) + 128 == 26624
    assert macs_per_step("lstm", 8, 1, 3, 1, peephole=True) == 4 * 8 * 11 + 3 * 8 + 3 * 8 + 8 == 408


def test_a_crnn_student_with_the_maxconv_head_keeps_97_percent_and_streams_in_int8(
    tmp_path, activity_csv, bilstm_teacher
):
    """--conv and --pool give the student train's front-end and head (the issue allows a CRNN student): it is
    what was asked for, within the 1/8 budget, keeps the bar, and its int8 step model is measured."""
    from edgelstm.models.cost import param_count

    out = tmp_path / "crnn"
    args = ("--student", "gru:16", "--conv", "5:16", "--pool", "maxconv", "-o", out)
    r = invoke("distill", activity_csv, "--teacher", bilstm_teacher, *args)
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["arch"], cfg["units"], cfg["conv"], cfg["pool"]) == ("gru", 16, [[5, 16]], "maxconv")
    report = json.loads((out / "distill_report.json").read_text())
    teacher, student, baseline = report["models"]
    assert student["model"] == baseline["model"] == "conv5:16-gru:16x1-maxconvpool"
    assert student["params"] == param_count("gru", 16, 1, 6, 4, conv=[[5, 16]], pool="maxconv")
    assert student["params"] * 8 <= teacher["params"]
    assert report["student_vs_teacher"] >= 0.97, report
    assert student["int8_bytes"] > 0 and student["step_latency_us"] > 0


def test_a_maxconv_student_without_a_front_end_is_refused(tmp_path, activity_csv, bilstm_teacher):
    args = ("--student", "gru:16", "--pool", "maxconv", "-o", tmp_path / "s")
    err = one_line_error(invoke("distill", activity_csv, "--teacher", bilstm_teacher, *args))
    assert "maxconv" in err and "--conv" in err, err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("gru:16", ("gru", 16, 1)),
        ("lstm:32x2", ("lstm", 32, 2)),
        ("GRU:16x2", ("gru", 16, 2)),
        (" bilstm:8 ", ("bilstm", 8, 1)),
    ],
)
def test_parse_student(text, expected):
    from edgelstm.train.distill import parse_student

    s = parse_student(text)
    assert (s.arch, s.units, s.layers) == expected


@pytest.mark.parametrize("text", ["cnn:16", "gru", "gru:0", "gru:16x", "gru:16x0", "gru16"])
def test_bad_student_spec(tmp_path, activity_csv, bilstm_teacher, text):
    err = one_line_error(
        invoke("distill", activity_csv, "--teacher", bilstm_teacher, "--student", text, "-o", tmp_path / "s")
    )
    assert err.startswith(f"Error: --student {text!r}: "), err
    zero = text in ("gru:0", "gru:16x0")
    assert err.endswith("units and layers must be at least 1" if zero else "(e.g. gru:16, lstm:32x2)"), err


# --------------------------------------------------------------------------------------- teacher mismatches


def _distill_err(tmp_path, data, teacher, *extra):
    r = invoke("distill", data, "--teacher", teacher, "--student", "gru:8", "-o", tmp_path / "s", *extra)
    err = one_line_error(r)
    assert not (tmp_path / "s").exists()
    return err


def test_teacher_task_mismatch(tmp_path, activity_csv, bilstm_teacher):
    err = _distill_err(tmp_path, activity_csv, bilstm_teacher, "--task", "regress", "--target-col", "acc_x")
    assert re.fullmatch(
        r"Error: teacher .*bilstm32x2 is a classify model but the data is read for --task regress", err
    ), err


def test_teacher_labels_mismatch(tmp_path, activity_csv, bilstm_teacher):
    data = tmp_path / "relabelled.csv"
    data.write_text(activity_csv.read_text().replace(",walk\n", ",jog\n"))
    err = _distill_err(tmp_path, data, bilstm_teacher)
    assert err.endswith(f"labels (idle, run, stairs, walk) do not match {data}'s (idle, jog, run, stairs)"), err


def test_teacher_feature_count_mismatch(tmp_path, activity_csv, bilstm_teacher):
    err = _distill_err(tmp_path, activity_csv, bilstm_teacher, "--channels", "acc_x,acc_y,acc_z")
    assert err.endswith(
        f"expects 6 channels (acc_x, acc_y, acc_z, gyr_x, gyr_y, gyr_z) but {activity_csv} has 3 (acc_x, acc_y, acc_z)"
    ), err


def test_teacher_window_mismatch(tmp_path, bilstm_teacher):
    rng = np.random.default_rng(0)
    data = tmp_path / "w50.npz"
    labels = np.array(["idle", "run", "stairs", "walk"])
    np.savez(
        data,
        X=rng.normal(size=(40, 50, 6)).astype(np.float32),
        y=labels[np.arange(40) % 4],
        channels=np.array(["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]),
    )
    err = _distill_err(tmp_path, data, bilstm_teacher)
    assert err.endswith(f"window is 100 samples but {data} holds windows of 50"), err


def test_teacher_not_a_model_dir(tmp_path, activity_csv):
    (tmp_path / "empty").mkdir()
    err = _distill_err(tmp_path, activity_csv, tmp_path / "empty")
    assert err.endswith("empty: not an edgelstm model directory (no config.json)"), err


def test_bad_temperature_and_alpha(tmp_path, activity_csv, bilstm_teacher):
    assert (
        _distill_err(tmp_path, activity_csv, bilstm_teacher, "--temperature", "0")
        == "Error: --temperature must be greater than 0"
    )
    assert _distill_err(tmp_path, activity_csv, bilstm_teacher, "--alpha", "1.5") == "Error: --alpha must be in [0, 1]"


# ------------------------------------------------------------------------------------------------ forecast


@pytest.mark.slow  # trains a teacher and distills a student
def test_forecast_distillation_uses_the_teachers_task_and_targets(tmp_path, forecast_csv):
    teacher = tmp_path / "lstm_forecast"
    r = invoke(
        "train",
        forecast_csv,
        "--task",
        "forecast",
        "--target-col",
        "load",
        "--arch",
        "lstm",
        "--units",
        "16",
        "--window",
        "24",
        "--stride",
        "4",
        "--epochs",
        "4",
        "-o",
        teacher,
    )
    assert r.exit_code == 0, r.output
    out = tmp_path / "gru_student"
    r = invoke(
        "distill", forecast_csv, "--teacher", teacher, "--student", "gru:8", "--epochs", "4", "--no-int8", "-o", out
    )
    assert r.exit_code == 0, r.output
    report = json.loads((out / "distill_report.json").read_text())
    assert report["task"] == "forecast"
    for m in report["models"]:
        assert set(m["test"]) == {"rmse", "mae"} and 0 < m["test"]["rmse"] < 1e3
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["task"], cfg["targets"], cfg["window"], cfg["n_outputs"]) == ("forecast", ["load"], 24, 1)
    assert "held-out RMSE" in r.stdout and "baseline without teacher" in r.stdout


@pytest.mark.slow  # the demo trains, distills, quantizes
def test_demo_distill(tmp_path):
    """The demo's distillation section runs end to end (two epochs: the thresholds are asserted above)."""
    r = invoke("demo", "--distill", "--epochs", "2", "-o", tmp_path / "demo")
    assert r.exit_code == 0, r.output
    paths = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    assert set(paths) == {"data", "model", "export", "report", "teacher", "student", "distill_report", "student_int8"}
    assert paths["student_int8"].endswith("export_student/step.int8.tflite")
    assert r.stderr.count("(held out: a subject training never saw)") == 2  # the LSTM's and the GRU student's
    assert r.stderr.count("activity changes recognized") == 2
    report = json.loads((tmp_path / "demo" / "runs" / "gru_student" / "distill_report.json").read_text())
    assert [m["model"] for m in report["models"]] == ["bilstm:32x2", "gru:32x1", "gru:32x1"]
    assert "baseline (no teacher)" in r.stderr


def test_recordings_shorter_than_the_teachers_window(tmp_path, activity_csv, bilstm_teacher):
    data = tmp_path / "short.csv"
    lines = activity_csv.read_text().splitlines()
    data.write_text("\n".join([lines[0]] + [line for line in lines[1:] if float(line.split(",")[1]) < 1.0]) + "\n")
    err = _distill_err(tmp_path, data, bilstm_teacher)
    assert err.endswith(f"needs 100 samples per window but the longest recording in {data} has 50"), err


def test_bilstm_student_is_allowed_but_noted(tmp_path, activity_csv, bilstm_teacher):
    r = invoke(
        "distill",
        activity_csv,
        "--teacher",
        bilstm_teacher,
        "--student",
        "bilstm:4",
        "--epochs",
        "1",
        "--no-int8",
        "-o",
        tmp_path / "bi",
    )
    assert r.exit_code == 0, r.output
    assert "note: a BiLSTM student cannot stream (it needs the whole window)" in r.stderr
    report = json.loads((tmp_path / "bi" / "distill_report.json").read_text())
    assert [m["streams"] for m in report["models"]] == [False, False, False]
    assert report["models"][1]["macs_per_step"] == macs_per_step("bilstm", 4, 1, 6, 4) == 2 * (4 * 4 * 10 + 12) + 32


def test_format_report_shows_int8_figures_once_measured():
    """When convert/quantize fills int8 size and step latency, the table prints them instead of n/a."""
    from edgelstm.cli.distill import format_report

    def model(role, arch, acc, int8, lat):
        return {
            "role": role,
            "model": f"{arch}:8x1",
            "params": 100,
            "macs_per_step": 90,
            "streams": arch != "bilstm",
            "test": {"rmse": acc, "mae": acc / 2},
            "epochs_run": 3,
            "int8_bytes": int8,
            "step_latency_us": lat,
        }

    report = {
        "task": "forecast",
        "models": [
            model("teacher", "bilstm", 0.5, None, None),
            model("student", "gru", 0.6, 2048, 5.25),
            model("baseline", "gru", 0.7, 2048, 5.25),
        ],
        "student_vs_teacher": 1.2,
        "baseline_vs_teacher": 1.4,
        "param_ratio": 1.0,
        "split_matches_teacher": False,
    }
    lines = format_report(report).splitlines()
    assert next(x for x in lines if x.startswith("int8 size")).split()[2:] == [
        "n/a",
        "(not",
        "measured)",
        "2,048",
        "B",
        "2,048",
        "B",
    ]
    assert next(x for x in lines if x.startswith("held-out RMSE")).split()[2:] == ["0.5000", "0.6000", "0.7000"]
    assert "student RMSE is 1.20x the teacher's (baseline without teacher: 1.40x)" in lines[-2]
    assert lines[-1].startswith("warning: the teacher was trained on another split")


def test_macs_per_step_counts_the_convolutional_front_end():
    from edgelstm.models.cost import macs_per_step

    # conv 5×6→16 (480), conv 1×16→8 (128), then an LSTM of 32 over 8 inputs: 4·(8+32)·32 + 96, head 32·4
    assert macs_per_step("lstm", 32, 1, 6, 4, conv=[[5, 16], [1, 8]]) == 480 + 128 + 5120 + 96 + 128 == 5952


def test_student_uses_the_teachers_test_file(tmp_path):
    """A teacher trained with --test: the student learns from all of DATA but the validation share (the teacher's
    split exactly) and is scored on the same test file, as the teacher."""
    rng = np.random.default_rng(0)

    def npz(path, n):
        y = np.arange(n) % 2
        t = np.arange(16)[None, :, None] / 3.0
        X = np.sin((y[:, None, None] + 1) * t + rng.uniform(0, 6, (n, 1, 1))) + 0.1 * rng.normal(size=(n, 16, 2))
        np.savez(path, X=X.astype(np.float32), y=y, labels=np.array(["p", "q"]))
        return path

    train, test = npz(tmp_path / "train.npz", 40), npz(tmp_path / "test.npz", 24)
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    r = invoke("train", train, "--test", test, "--units", "8", "--epochs", "1", "-o", teacher)
    assert r.exit_code == 0, r.output
    r = invoke(
        "distill", train, "--teacher", teacher, "--student", "gru:4", "--epochs", "1", "--no-int8", "-o", student
    )
    assert r.exit_code == 0, r.output
    report = json.loads((student / "distill_report.json").read_text())
    assert report["split_matches_teacher"] is True and "differs from the teacher's" not in r.output
    metrics = json.loads((student / "metrics.json").read_text())
    tmetrics = json.loads((teacher / "metrics.json").read_text())
    assert metrics["test"]["n"] == tmetrics["test"]["n"] == 24  # the test file, not a share of DATA
    assert metrics["split"]["train"]["windows"] == tmetrics["split"]["train"]["windows"]
    assert (
        metrics["protocol"] == tmetrics["protocol"] == f"the test file {test} (nothing of the training data held out)"
    )
