"""`edgelstm evaluate`: the held-out split recorded at training, per-window predictions, the confusion matrix, and
naive forecast baselines on the same windows."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import invoke, one_line_error

from edgelstm.errors import InputError
from edgelstm.evaluate.metrics import forecast_baselines


def test_seasonal_naive_is_exact_on_a_periodic_signal_and_persistence_is_not():
    period, T, H = 6, 12, 2
    series = np.sin(2 * np.pi * np.arange(200) / period)[:, None].astype(np.float32)
    starts = np.arange(0, 200 - T - H)
    X = series[starts[:, None] + np.arange(T)]
    y = np.concatenate([series[starts + T + h] for h in range(H)], axis=1)  # step-major, as make_windows
    b = forecast_baselines(X, y, [0], H, season=period)
    assert b["rmse_seasonal_naive"] == pytest.approx(0.0, abs=1e-6) and b["season"] == period
    assert b["rmse_persistence"] > 0.5
    # persistence by hand: the last value of each window, for both steps
    assert b["mae_persistence"] == pytest.approx(np.mean(np.abs(y - np.repeat(X[:, -1, :], H, axis=1))))


def test_a_season_outside_the_window_is_refused():
    X = np.zeros((3, 10, 1), np.float32)
    with pytest.raises(InputError, match=r"--season 11 must be at least the horizon \(1\) and fit in the window"):
        forecast_baselines(X, np.zeros((3, 1)), [0], 1, season=11)


@pytest.mark.slow
def test_split_test_rescores_the_held_out_split_with_a_confusion_matrix(lstm_model, tmp_path):
    stored = json.loads((lstm_model / "metrics.json").read_text())["test"]
    preds = tmp_path / "p.csv"
    r = invoke("evaluate", lstm_model, "--split", "test", "--predictions", preds)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == (
        f"{lstm_model}: accuracy {stored['accuracy']:.3f}, macro-F1 {stored['macro_f1']:.3f} "
        f"({stored['n']} windows, the held-out test split)"
    )
    assert lines[1] == "confusion (rows: truth, columns: prediction):"
    rows = [ln.split() for ln in lines[3 : 3 + len(stored["labels"])]]
    assert [[int(v) for v in row[1:]] for row in rows] == stored["confusion"]
    with open(preds) as f:
        table = list(csv.DictReader(f))
    assert len(table) == stored["n"]
    assert np.mean([t["truth"] == t["prediction"] for t in table]) == pytest.approx(stored["accuracy"])
    scores = np.array([[float(t[f"score_{c}"]) for c in stored["labels"]] for t in table])
    assert np.allclose(scores.sum(axis=1), 1, atol=1e-4)


@pytest.mark.slow
def test_split_test_with_data_is_refused(lstm_model, activity_csv):
    err = one_line_error(invoke("evaluate", lstm_model, activity_csv, "--split", "test"))
    assert err == "Error: --split test scores the held-out split recorded at training: give no DATA"


@pytest.mark.slow
def test_forecast_evaluate_scores_every_step_and_the_naive_baselines(forecast_csv, tmp_path):
    model = tmp_path / "f"
    r = invoke(
        "train",
        forecast_csv,
        "--task",
        "forecast",
        "--units",
        "8",
        "--window",
        "24",
        "--stride",
        "24",
        "--epochs",
        "1",
        "-o",
        model,
    )
    assert r.exit_code == 0, r.output
    r = invoke("evaluate", model, forecast_csv, "--season", "24", "--json")
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    assert m["n"] == 24 * 20 - 24  # stride 1: every step of the 480 hours is a target once (the training stride: 19)
    assert m["season"] == 24 and m["rmse_seasonal_naive"] > 0 and m["rmse_persistence"] > 0
    text = invoke("evaluate", model, forecast_csv, "--season", "24").stdout
    assert "persistence (next = now): RMSE" in text and "seasonal-naive (season 24): RMSE" in text
