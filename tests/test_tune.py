"""`edgelstm tune`: the search space, budgets and Pareto front as data, then one real search end to end (real
training, the real int8 converter, the device runner)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import invoke

from edgelstm.models.cost import param_count
from edgelstm.plots import pareto_front
from edgelstm.train.tune import ARCHS, LAYERS, POOLS, RECIPES, UNITS, Budget, Candidate, candidates


def test_candidates_start_with_the_defaults_and_cover_the_space_once():
    a, b = candidates(0), candidates(1)
    assert a[0] == b[0] == Candidate("lstm", (), 64, 1, "default")
    # every pool for an arch with a conv front-end; without one, every pool but maxconv (nothing to pool)
    with_conv = sum(bool(conv) for _, conv in ARCHS)
    n = (with_conv * len(POOLS) + (len(ARCHS) - with_conv) * (len(POOLS) - 1)) * len(UNITS) * len(LAYERS) * len(RECIPES)
    assert len(a) == len(set(a)) == n == 400
    assert not [c for c in a if c.pool == "maxconv" and not c.conv]
    assert set(a) == set(b) and a[1:] != b[1:]  # the order is the seed's
    assert candidates(0) == a


def test_pareto_front_keeps_only_undominated_points():
    # (size, accuracy): 3 is beaten by 1 (smaller and better); 4 ties 2's accuracy at a larger size
    xs = [10.0, 5.0, 20.0, 12.0, 30.0]
    ys = [0.80, 0.70, 0.90, 0.75, 0.90]
    assert pareto_front(xs, ys) == [1, 0, 2]
    assert pareto_front(xs, [1 - y for y in ys], higher_better=False) == [1, 0, 2]


def test_budget_from_the_shape_alone():
    b = Budget(max_params=5000, max_kb=3.0)
    big = Candidate("lstm", (), 64, 1, "default")
    p = param_count("lstm", 64, 1, 6, 4)
    assert b.before_training(big, p) == f"{p} parameters > 5000"
    mid = Candidate("gru", (), 32, 1, "default")  # 3 × (6 + 32 + 2) × 32 + 33 × 4: at least 3.9 KB as int8
    assert param_count("gru", 32, 1, 6, 4) == 3972
    assert b.before_training(mid, 3972) == "at least 3.9 KB int8 > 3 KB"
    assert b.before_training(Candidate("gru", (), 16, 1, "default"), param_count("gru", 16, 1, 6, 4)) is None


def test_a_rocket_candidate_is_sized_and_checked_before_training():
    """Its size from the window and channels alone (a threshold and a head row per share), and a target whose
    runtime has no rocket engine skips it with the rule's reason."""
    from edgelstm.models.cost import rocket_params
    from edgelstm.runtime.rocket import n_shares
    from edgelstm.targets.profile import load_target

    # windows of 24 samples: dilations 1 and 2; 3 channels x 84 kernels x 2 dilations = 504 responses, 8 each
    assert n_shares(24, 3, 4000) == 4032 and n_shares(24, 3, 1000) == 1008 and n_shares(24, 3, 10) == 504
    assert rocket_params(4032, 3) == 16128
    c = Candidate("rocket", (), 4000, 1, "default")
    assert c.name == "rocket4000"
    assert Budget(max_params=10_000).before_training(c, 16128) == "16128 parameters > 10000"
    assert Budget(target=load_target("linux-x86_64")).before_training(c, 16128) is None
    why = Budget(target=load_target("coral-edgetpu")).before_training(c, 16128)
    assert why == "coral-edgetpu: it runs tflite models, not rocket", why


@pytest.mark.slow
def test_param_count_is_what_keras_counts():
    from edgelstm.models.build import build_model
    from edgelstm.models.config import ModelConfig

    cases = [
        ("lstm", 64, 1, [], False, "concat", 1, "last"),
        ("gru", 32, 2, [[5, 32]], False, "concat", 1, "last"),
        ("lstm", 16, 2, [], True, "concat", 1, "last"),
        ("bilstm", 16, 2, [], False, "sum", 1, "last"),
        ("bilstm", 8, 1, [], False, "concat", 1, "last"),
        ("gru", 32, 1, [[3, 16], [3, 8]], False, "concat", 4, "last"),
        ("lstm", 16, 1, [[5, 12]], False, "concat", 4, "max"),
        ("gru", 16, 2, [[5, 12], [3, 10]], False, "concat", 4, "maxconv"),
    ]
    for arch, units, layers, conv, peephole, merge, frame, pool in cases:
        cfg = ModelConfig(
            arch=arch, task="classify", units=units, layers=layers, merge=merge, dropout=0.0, peephole=peephole,
            conv=conv, frame=frame, pool=pool, window=40, stride=20, horizon=1, n_features=6, n_outputs=4,
            channels=[f"c{i}" for i in range(6)], labels=list("abcd"), targets=[], norm_mean=[0.0] * 6,
            norm_std=[1.0] * 6, target_mean=[], target_std=[], sample_rate=50.0, masked=False,
        )  # fmt: skip
        expected = build_model(cfg).count_params()
        assert param_count(arch, units, layers, 6 * frame, 4, merge, peephole, conv, pool) == expected, cfg


def tiny_npz(path, n_rec: int = 12, per_rec: int = 6, T: int = 24):
    """Three classes told apart by frequency, 12 recordings of 6 windows, so 2 folds by recording are real."""
    rng = np.random.default_rng(0)
    X, y, groups = [], [], []
    for r in range(n_rec):
        c = r % 3
        for _ in range(per_rec):
            t = np.arange(T) / 10.0 + rng.uniform(0, 6)
            w = np.stack([np.sin((c + 1) * t), np.cos((c + 1) * t), 0.5 * np.sin(2 * (c + 1) * t)], -1)
            X.append(w + 0.15 * rng.normal(size=w.shape))
            y.append(c)
            groups.append(f"rec{r:02d}")
    np.savez(path, X=np.array(X, np.float32), y=np.array(y), groups=np.array(groups), labels=np.array(["a", "b", "c"]))
    return path


def test_a_budget_nothing_fits_is_one_line_and_writes_nothing(tmp_path):
    data = tiny_npz(tmp_path / "d.npz")
    r = invoke("tune", data, "--max-params", "10", "-o", tmp_path / "m")
    assert r.exit_code == 2 and "Traceback" not in r.output
    err = r.stderr.strip().splitlines()[-1]  # after the progress line
    n = len(candidates(0, rocket=True))  # windows of 24 samples: the rocket models are candidates too
    assert err.startswith(f"Error: no trial fits the budget: {n} skipped (smallest: gru16x1"), err
    assert err.endswith(", 1059 parameters > 10)"), err  # GRU 16 on 3 channels: 3 × (3 + 16 + 2) × 16 + 17 × 3
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_tune_searches_under_the_budget_and_writes_the_winner(tmp_path):
    data = tiny_npz(tmp_path / "d.npz")
    out = tmp_path / "best"
    r = invoke(
        "tune", data, "--trials", "2", "--folds", "2", "--epochs", "2", "--max-params", "6000", "-o", out
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(out / "tune.csv")))
    tried = [row for row in rows if row["status"] != "skipped"]
    skipped = [row for row in rows if row["status"] == "skipped"]
    assert len(tried) == 2
    # train's default for windows (a rocket model of about 4,000 shares) comes first and is over the parameter
    # budget: skipped, not trained
    assert rows[0]["trial"] == "rocket4000" and rows[0]["status"] == "skipped"
    for row in skipped:
        assert int(row["params"]) > 6000 and row["why"] == f"{row['params']} parameters > 6000"
    for row in tried:
        assert row["status"] == "ok", row
        assert int(row["params"]) <= 6000
        assert 0 <= float(row["int8_accuracy"]) <= 1 and float(row["int8_kb"]) > 0 and float(row["step_us"]) > 0
    summary = json.loads((out / "tune.json").read_text())
    best = max(tried, key=lambda row: float(row["int8_accuracy"]))
    assert summary["best"] == best["trial"]
    assert f"{best['trial']} *" in r.output  # the printed table marks it
    # the winner's model directory: its config is the winning candidate, its int8 step model is there
    cfg = json.loads((out / "config.json").read_text())
    assert f"{cfg['arch']}{cfg['units']}x{cfg['layers']}" in best["trial"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"].startswith("tune, 2 trials: out-of-fold int8")
    assert metrics["test"]["n"] == 72  # the pooled out-of-fold windows: every window once
    assert abs(metrics["test"]["accuracy"] - float(best["int8_accuracy"])) < 0.1  # pooled vs mean of 2 folds
    png = (out / "tune.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    from edgelstm.modelfile.inspect import inspect_model

    assert inspect_model(out / "step.int8.tflite")["metadata"]["quantization"] == "int8"
