"""bench/accuracy.py: its helpers (fast), and a smoke run of the real pipeline on BasicMotions (slow).

The full benchmark is hours of training and never runs here; the smoke run trains 3 epochs, one seed, and checks
that the table it writes is made of this run's numbers."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


@pytest.fixture
def bench(monkeypatch):
    """bench/ is scripts, not a package: import accuracy.py and realdata.py the way the script sees them."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("accuracy"), importlib.import_module("realdata")


def test_summary_features_per_channel(bench):
    acc, _ = bench
    t = np.arange(5, dtype=np.float32)
    seq = np.stack([t, 10 - 2 * t], axis=1)  # slopes +1 and -2
    f = acc.summary_features([seq, seq[:3]])
    assert f.shape == (2, 11 * 2)
    stats = f[0].reshape(11, 2)  # mean, std, min, max, median, p10, p25, p75, p90, mean |diff|, slope
    np.testing.assert_allclose(stats[0], [2.0, 6.0])
    np.testing.assert_allclose(stats[9], [1.0, 2.0])
    np.testing.assert_allclose(stats[10], [1.0, -2.0])


def test_variable_lengths_are_written_flat_with_lengths(bench, tmp_path):
    _, rd = bench
    seqs = [np.ones((n, 3), np.float32) * n for n in (7, 9, 4)]
    rd.write_npz(rd.Split(seqs, np.array([0, 1, 0])), ["a", "b"], tmp_path / "v.npz")
    z = np.load(tmp_path / "v.npz")
    assert z["X"].shape == (20, 3) and z["X"].dtype == np.float32
    assert z["lengths"].tolist() == [7, 9, 4] and z["y"].dtype == np.int64
    assert z["labels"].tolist() == ["a", "b"]
    rd.write_npz(rd.Split(seqs[:1] * 2, np.array([0, 1])), ["a", "b"], tmp_path / "e.npz")
    z = np.load(tmp_path / "e.npz")
    assert z["X"].shape == (2, 7, 3) and "lengths" not in z.files


def test_natural_label_order(bench):
    _, rd = bench
    assert rd.natural_sort({"10", "2", "1"}) == ["1", "2", "10"]
    assert rd.natural_sort({"walking", "badminton"}) == ["badminton", "walking"]


def test_summary_compares_int8_with_the_best_baseline(bench):
    acc, _ = bench
    results = [
        {"method": "RF", "seed": None, "accuracy": 0.8, "macro_f1": 0.7},
        {"method": "MiniRocket", "seed": None, "accuracy": 0.9, "macro_f1": 0.6},
        {"method": "1-NN DTW", "seed": None, "skipped": "too big"},
        *({"method": acc.EDGE_FLOAT, "seed": s, "accuracy": a, "macro_f1": 0.5} for s, a in enumerate([0.9, 0.94])),
        *({"method": acc.EDGE_INT8, "seed": s, "accuracy": a, "macro_f1": 0.5} for s, a in enumerate([0.88, 0.92])),
    ]
    s = acc.summarize(results)["accuracy"]
    assert s["best_baseline"] == ("RF", 0.8)  # MiniRocket is the peer held to a tolerance, not a classic baseline
    assert s[acc.EDGE_FLOAT]["spread"] == pytest.approx(0.04)
    assert s[acc.EDGE_INT8]["mean"] == pytest.approx(0.90)
    row = acc.table([{"task": "x", "summary": acc.summarize(results), "results": results}], "accuracy")[-1]
    cells = [c.strip() for c in row.strip("| ").split("|")]
    assert "too big" in row and cells[-3:] == ["RF 0.800", "yes (+0.100)", "yes (+0.000)"]
    results[1]["accuracy"] = 0.911  # int8 0.900: 1.1 points under MiniRocket
    row = acc.table([{"task": "x", "summary": acc.summarize(results), "results": results}], "accuracy")[-1]
    assert row.rstrip(" |").endswith("no (-0.011)")


def test_failed_training_is_a_row_not_a_crash(bench):
    acc, _ = bench
    results = [
        {"method": acc.EDGE_FLOAT, "seed": 0, "error": "Error: x.npz: y has 270 rows but X has 4274"},
        {"method": acc.EDGE_INT8, "seed": 0, "error": "Error: x.npz: y has 270 rows but X has 4274"},
        {"method": "RF", "seed": None, "accuracy": 0.9, "macro_f1": 0.9},
    ]
    row = acc.table([{"task": "jv", "summary": acc.summarize(results), "results": results}], "accuracy")[-1]
    assert "n/a: Error: x.npz: y has 270 rows" in row


def test_dtw_is_skipped_where_it_cannot_or_should_not_run(bench):
    acc, rd = bench
    var = rd.Split([np.zeros((n, 2), np.float32) for n in (9, 12)], np.array([0, 1]))
    with pytest.raises(acc.SkipBaseline, match="equal lengths"):
        acc.run_dtw(rd.Task("v", "v", var, var, ["a", "b"]))
    big = rd.Split([np.zeros((1460, 1), np.float32)] * 100, np.zeros(100, np.int64))  # ACSF1's size
    with pytest.raises(acc.SkipBaseline, match="2.1e"):
        acc.run_dtw(rd.Task("b", "b", big, big, ["a"]))


def markdown_rows(md: str, heading: str) -> list[list[str]]:
    """The body rows of the first table under `## heading`."""
    block = md.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.startswith("|")][2:]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]


@pytest.mark.slow
def test_smoke_run_writes_this_runs_numbers(tmp_path):
    out, js = tmp_path / "accuracy.md", tmp_path / "accuracy.json"
    cmd = [sys.executable, str(BENCH / "accuracy.py"), "--smoke", "--epochs", "3", "--work", str(tmp_path / "w")]
    done = subprocess.run([*cmd, "--out", str(out), "--json", str(js)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(js.read_text())
    md = out.read_text()

    (task,) = report["tasks"]
    assert task["task"] == "basicmotions" and (task["n_train"], task["n_test"]) == (40, 40)
    by_method = {r["method"]: r for r in task["results"]}
    assert set(by_method) == {"RF", "MiniRocket", "1-NN DTW", "edgelstm float", "edgelstm int8"}
    for method in ("RF", "edgelstm float", "edgelstm int8"):
        r = by_method[method]
        assert r["run_id"] == report["run_id"], method  # the baseline and edgelstm come from this one run
        for metric in ("accuracy", "macro_f1"):
            assert isinstance(r[metric], float) and 0.0 <= r[metric] <= 1.0, (method, metric, r)
    assert by_method["edgelstm int8"]["n_test"] == 40  # the int8 step model scored every test sequence
    # streaming each test sequence through the runner `edgelstm run` drives ends on evaluate's prediction
    assert by_method["edgelstm int8"]["stream"] == {"sequences": 40, "same": 40}
    assert "skipped" in by_method["MiniRocket"] and "skipped" in by_method["1-NN DTW"]

    # the markdown: one detail row per method, its numbers exactly the JSON's, and the run id
    assert report["run_id"] in md
    detail = {row[1]: row for row in markdown_rows(md, "Every row")}
    assert set(detail) == set(by_method)
    for method in ("RF", "edgelstm float", "edgelstm int8"):
        assert float(detail[method][3]) == pytest.approx(by_method[method]["accuracy"], abs=5e-4)
        assert float(detail[method][4]) == pytest.approx(by_method[method]["macro_f1"], abs=5e-4)
    for heading in ("Accuracy", "Macro-F1"):
        (row,) = markdown_rows(md, heading)
        assert row[0] == "basicmotions"
        numbers = [float(x) for c in row[1:] for x in re.findall(r"(?<![\w.])[01]\.\d{3}\b", c)]
        assert numbers and all(0.0 <= x <= 1.0 for x in numbers)
    (acc_row,) = markdown_rows(md, "Accuracy")
    assert acc_row[5] == "—"  # edgelstm tune: not run in the smoke run
    assert float(acc_row[6]) == pytest.approx(by_method["RF"]["accuracy"], abs=5e-4)
    assert float(acc_row[2].split()[0]) == pytest.approx(by_method["edgelstm int8"]["accuracy"], abs=5e-4)
    assert "## Machine" in md and "CPU:" in md
