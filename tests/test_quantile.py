"""The rank-Gaussian input map (`train --input-map quantile`): each channel through its training quantiles onto a
standard normal, before standardization, on the training side and on the device alike (runtime/quantile.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import engine_windows, invoke

from edgelstm.runtime.quantile import QuantileMap, fit_knots, table_problem


def heavy(n: int = 20000, seed: int = 0) -> np.ndarray:
    """A power-like channel: mostly near a standby level, with bursts two orders above it."""
    rng = np.random.default_rng(seed)
    x = rng.lognormal(0.0, 0.3, n)
    burst = rng.random(n) < 0.2
    x[burst] = rng.lognormal(4.5, 0.5, burst.sum())
    return x


def test_knots_map_a_heavy_channel_onto_a_standard_normal():
    from statistics import NormalDist

    x = heavy()
    xs, ys = fit_knots(x, 64)
    qmap = QuantileMap([xs], [ys])
    z = qmap(x[:, None].astype(np.float32))[:, 0]
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.15, (z.mean(), z.std())
    # the bursts no longer own the range: the median sample sits mid-scale, not at the bottom step of int8
    assert abs(np.median(z)) < 0.05
    # the normal CDF of a mapped value is the sample's rank among the training samples, to one knot's spacing
    probe = np.quantile(x, np.linspace(0.01, 0.99, 99)).astype(np.float32)
    ranks = np.searchsorted(np.sort(x), probe, side="right") / len(x)
    cdf = np.array([NormalDist().cdf(float(v)) for v in qmap(probe[:, None])[:, 0]])
    assert np.abs(cdf - ranks).max() < 1 / 63


def test_map_is_monotone_inverts_within_range_and_clamps_beyond_it():
    x = heavy(seed=1)
    qmap = QuantileMap(*map(lambda v: [v], fit_knots(x)))
    grid = np.linspace(x.min(), x.max(), 1001, dtype=np.float32)[:, None]
    z = qmap(grid)
    assert (np.diff(z[:, 0]) >= 0).all()
    assert np.allclose(qmap.invert(z), grid, rtol=1e-4, atol=1e-4)
    far = qmap(np.array([[-1e30], [1e30], [np.nan]], np.float32))
    assert far[0, 0] == pytest.approx(-5.199, abs=1e-3) and far[1, 0] == pytest.approx(5.199, abs=1e-3)
    assert np.isnan(far[2, 0])


def test_ties_constant_and_two_level_channels():
    assert fit_knots(np.full(100, 3.0)) == ([], [])
    xs, ys = fit_knots(np.r_[np.zeros(70), np.ones(30)])
    assert xs[0] == 0.0 and xs[-1] == 1.0 and len(xs) <= 3  # the tied quantiles are one knot each end
    qmap = QuantileMap.from_lists([[], xs], [[], ys])
    assert list(qmap.idx) == [1]
    out = qmap(np.array([[7.0, 1.0], [7.0, 0.0]], np.float32))
    assert (out[:, 0] == 7.0).all() and out[1, 1] < 0 < out[0, 1]
    assert QuantileMap.from_lists([[], []], [[], []]) is None
    # a frame of 3 samples repeats the channels' tables: a row of 3 samples maps as the 3 samples one by one
    samples = np.array([[[7.0, 1.0], [5.0, 0.0], [3.0, 0.5]], [[1.0, 0.0], [2.0, 1.0], [4.0, 0.2]]], np.float32)
    rows = samples.reshape(2, 6)
    assert np.array_equal(qmap.tile(3)(rows), qmap(samples).reshape(2, 6))
    assert np.array_equal(qmap.tile(3).invert(rows), qmap.invert(samples).reshape(2, 6))
    assert np.array_equal(rows, samples.reshape(2, 6))  # the caller's array is left as it was


@pytest.mark.parametrize(
    "xs, ys, n, message",
    [
        ([[0.0, 1.0]], [[0.0]], 1, "channel 0's quantile knots and values differ in length"),
        ([[1.0, 0.0]], [[0.0, 1.0]], 1, "channel 0's quantile knots do not increase"),
        ([[0.0, float("nan")]], [[0.0, 1.0]], 1, "not a finite number"),
        ([[0.0, 1.0]], [[0.0, 1.0]], 2, "quantile tables for 1 / 1 channels, not 2"),
    ],
)
def test_bad_tables_are_named(xs, ys, n, message):
    assert message in table_problem(xs, ys, n)


def test_auto_maps_only_the_channels_int8s_rule_calls_heavy_tailed():
    from edgelstm.data.normalize import Normalization

    rng = np.random.default_rng(3)
    X = np.stack([heavy(6000, seed=4), rng.normal(5.0, 1.0, 6000)], axis=1).reshape(60, 100, 2)
    norm = Normalization.fit(X, "auto")
    knots, _ = norm.quantile_lists()
    assert len(knots[0]) > 10 and knots[1] == []
    z = norm.apply(X).reshape(-1, 2)
    assert abs(np.median(z[:, 0])) < 0.1  # mapped: the median sample sits mid-scale
    assert np.allclose(z[:, 1], (X[..., 1].ravel() - X[..., 1].mean()) / X[..., 1].std(), atol=1e-4)  # linear
    assert Normalization.fit(X, "linear").compander is None
    assert norm.compand_lists() == ([], [])


def test_regression_refuses_an_input_map_by_message():
    from edgelstm.errors import InputError
    from edgelstm.train.fit import TrainOptions

    with pytest.raises(InputError, match="--input-map applies to classification"):
        TrainOptions(task="regress", input_map="quantile", window=50, stride=1, frame=1).check()


@pytest.fixture(scope="module")
def mapped(tmp_path_factory, activity_csv):
    """The demo's LSTM 32 trained with the quantile map on the sample data, quantized to int8."""
    from conftest import train_and_quantize

    out = tmp_path_factory.mktemp("quantile")
    return train_and_quantize(out, activity_csv, ["--units", "32", "--input-map", "quantile"], ["--mode", "int8"])


@pytest.mark.slow
def test_mapped_model_keeps_the_invariants(mapped):
    from edgelstm.data.prepare import model_inputs
    from edgelstm.export.tflite import step_tflite
    from edgelstm.modelfile.read import read_metadata
    from edgelstm.models.modeldir import load_config, load_keras
    from edgelstm.models.step import build_step_model

    m, export = mapped
    cfg = load_config(m)
    assert cfg.training["input_map"] == "quantile" and len(cfg.quantile_knots) == cfg.n_features
    rep = json.loads((export / "report.json").read_text())
    (q,) = [e for e in rep["models"] if e["file"] == "step.int8.tflite"]
    assert q["vs_reference"]["argmax_agreement"] >= 0.99 and q["accuracy_drop"] <= 0.01, q
    meta_norm = read_metadata(export / "step.int8.tflite")["normalization"]
    assert np.allclose(meta_norm["quantile"]["knots"][0], cfg.quantile_knots[0])
    # the float step model stepped over windows equals the sequence model
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 2, (4, cfg.window, cfg.n_features)).astype(np.float32)
    Xn = model_inputs(cfg, raw)
    _, model = load_keras(m)
    want = model(Xn, training=False).numpy()
    assert np.abs(engine_windows(step_tflite(build_step_model(cfg, model)), Xn) - want).max() <= 1e-5


@pytest.mark.slow
def test_mapped_stream_through_run_maps_raw_samples_as_training_did(mapped, activity_csv):
    """run takes raw samples: its outputs equal the step engine fed the training side's mapped, normalized ones."""
    import csv

    from edgelstm.data.prepare import model_inputs
    from edgelstm.models.modeldir import load_config

    m, export = mapped
    cfg = load_config(m)
    rows = list(csv.DictReader(activity_csv.open()))[:40]
    raw = np.array([[float(r[c]) for c in cfg.channels] for r in rows], np.float32)
    path = export / "step.int8.tflite"
    r = invoke("run", path, "-", input="".join(",".join(map(str, s)) + "\n" for s in raw))
    assert r.exit_code == 0, r.output
    outs = [json.loads(ln) for ln in r.stdout.strip().splitlines()]
    assert len(outs) == len(raw)
    xn = model_inputs(cfg, raw[None])
    want = engine_windows(path, xn)[0]
    assert np.abs(np.array(outs[-1]["scores"]) - want).max() <= 1e-6
    # linearly normalized input would have given other scores: the map is what ran
    lin = (raw - np.asarray(cfg.norm_mean, np.float32)) / np.asarray(cfg.norm_std, np.float32)
    assert np.abs(engine_windows(path, lin[None])[0] - want).max() > 1e-3


@pytest.mark.slow
def test_c_export_refuses_a_mapped_model_and_metadata_checks_tables(mapped, tmp_path):
    from edgelstm.errors import MetadataError
    from edgelstm.export.csource import refuse_reason
    from edgelstm.modelfile.read import read_metadata
    from edgelstm.models.modeldir import load_config
    from edgelstm.runtime.stream import check_metadata

    m, export = mapped
    assert "a quantile input map has no C form" in refuse_reason(load_config(m), "int8")
    meta = read_metadata(export / "step.int8.tflite")
    meta["normalization"]["quantile"]["knots"][0] = meta["normalization"]["quantile"]["knots"][0][::-1]
    with pytest.raises(MetadataError, match="normalization.quantile: channel 0's quantile knots do not increase"):
        check_metadata(meta, tmp_path / "x.tflite")
    meta = read_metadata(export / "step.int8.tflite")
    n = len(meta["normalization"]["mean"])
    meta["normalization"]["compand"] = {"center": [0.0] * n, "scale": [0.0] * n}
    with pytest.raises(MetadataError, match="holds a compander and quantile tables; one map"):
        check_metadata(meta, tmp_path / "x.tflite")


@pytest.mark.slow
def test_train_refuses_an_unknown_input_map(activity_csv, tmp_path):
    r = invoke("train", activity_csv, "--input-map", "log", "-o", tmp_path / "m")
    assert r.exit_code == 2 and "Invalid value for '--input-map'" in r.output
    assert not (tmp_path / "m").exists()
