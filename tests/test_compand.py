"""Companding of heavy-tailed channels (runtime/compand.py): chosen by the int8 rule at training, stored with the
model, applied by the device's one engine to raw samples, so streaming raw current or power equals the trained
model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import invoke

from edgelstm.runtime.compand import Compander, heavy_tailed_scale


def spec_compand(x: np.ndarray, center: float, scale: float) -> np.ndarray:
    """The documented map, written here from its definition: sign(d)·log1p(|d|/s), d = x − center."""
    d = x.astype(np.float64) - center
    return np.sign(d) * np.log1p(np.abs(d) / scale)


def current_like(rng, n: int) -> np.ndarray:
    """Mostly a few milliamps of standby, sometimes hundreds of amps: PLAID's shape."""
    x = rng.normal(0.0, 0.02, n)
    on = rng.random(n) < 0.2
    x[on] += rng.normal(0, 150, on.sum())
    return x


def test_the_int8_rule_compands_a_heavy_tail_and_leaves_gaussian_and_constant_channels_linear():
    rng = np.random.default_rng(0)
    center, scale = heavy_tailed_scale(current_like(rng, 20000))
    assert abs(center) < 0.01 and 0.005 < scale < 0.05, (center, scale)
    assert heavy_tailed_scale(rng.normal(3.0, 2.0, 20000))[1] == 0.0
    assert heavy_tailed_scale(rng.laplace(0.0, 1.0, 20000))[1] == 0.0  # a heavier tail still within int8's range
    assert heavy_tailed_scale(np.full(100, 7.0))[1] == 0.0
    # over half the samples exactly on the median: the scale comes from the others
    x = np.zeros(1000)
    x[:300] = rng.uniform(1, 500, 300)
    assert heavy_tailed_scale(x)[1] > 0


def test_compander_follows_its_definition_inverts_and_keeps_padding_and_linear_channels():
    c = Compander([0.5, 0.0], [0.1, 0.0])
    x = np.array([[[0.5, 3.0], [10.0, -2.0], [-40.0, 1e4], [np.nan, np.nan]]], np.float32)
    y = c(x)
    np.testing.assert_allclose(y[0, :3, 0], spec_compand(x[0, :3, 0], 0.5, 0.1), rtol=1e-6)
    np.testing.assert_array_equal(y[0, :3, 1], x[0, :3, 1])
    assert np.isnan(y[0, 3]).all() and not np.isnan(x).all() and x[0, 1, 0] == 10.0  # input untouched
    np.testing.assert_allclose(c.invert(y)[0, :3], x[0, :3], rtol=1e-5)
    assert Compander.from_lists([], []) is None and Compander.from_lists([1.0], [0.0]) is None
    t = c.tile(2)
    np.testing.assert_allclose(t(np.tile(x[0, :3], 2))[:, 2], y[0, :3, 0], rtol=1e-6)


@pytest.fixture(scope="module")
def companded(tmp_path_factory):
    """A GRU trained on two channels, a current-like one whose class lives in its standby milliamps and a Gaussian
    one, then its float and int8 step models. Trained with train's default epochs: stopped after 4 under the
    classifier recipe it sat near ties (held-out 0.528) and 1 of 36 windows flipped in int8; trained, 100 %."""
    rng = np.random.default_rng(1)
    out = tmp_path_factory.mktemp("compand")
    n, T = 240, 40
    y = rng.integers(0, 3, n)
    X = np.zeros((n, T, 2), np.float32)
    for i in range(n):
        X[i, :, 0] = current_like(rng, T) + 0.03 * y[i] * np.sin(np.arange(T) / 3)
        X[i, :, 1] = rng.normal(5.0, 1.0, T)
    np.savez(out / "train.npz", X=X, y=y, labels=np.array(["a", "b", "c"]), channels=np.array(["amps", "volts"]))
    m = out / "m"
    r = invoke("train", out / "train.npz", "--arch", "gru", "--units", "16", "--input-map", "compand", "-o", m)
    assert r.exit_code == 0, r.output
    r = invoke("convert", m, "--kind", "step")
    assert r.exit_code == 0, r.output
    r = invoke("quantize", m, "--mode", "int8", "-o", out / "q")
    assert r.exit_code == 0, r.output
    return m, out / "q", X


def test_training_compands_only_the_heavy_tailed_channel_and_the_files_carry_it(companded):
    from edgelstm.modelfile.read import read_metadata

    m, q, X = companded
    cfg = json.loads((m / "config.json").read_text())
    assert cfg["compand_scale"][0] > 0 and cfg["compand_scale"][1] == 0.0
    z = spec_compand(X[..., 0], cfg["compand_center"][0], cfg["compand_scale"][0])
    # mean and std are the companded training split's (a share of X): near all of X's, far from raw units (std ~67)
    assert abs(cfg["norm_mean"][0] - z.mean()) < 0.1 * z.std() and abs(cfg["norm_std"][0] / z.std() - 1) < 0.1
    for f in (m / "step.tflite", q / "step.int8.tflite"):
        comp = read_metadata(f)["normalization"]["compand"]
        assert comp == {"center": cfg["compand_center"], "scale": cfg["compand_scale"]}


def test_run_over_raw_samples_equals_the_keras_model_on_companded_inputs(companded):
    from edgelstm.models.modeldir import load_keras

    m, _, X = companded
    cfg = json.loads((m / "config.json").read_text())
    w = X[7]
    xn = np.stack([spec_compand(w[:, 0], cfg["compand_center"][0], cfg["compand_scale"][0]), w[:, 1]], axis=1)
    xn = ((xn - np.asarray(cfg["norm_mean"])) / np.asarray(cfg["norm_std"])).astype(np.float32)
    _, model = load_keras(m)
    want = np.asarray(model(xn[None], training=False))[0]
    r = invoke("run", m / "step.tflite", "-", input="".join(f"{a!r},{b!r}\n" for a, b in w.tolist()))
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout.strip().splitlines()[-1])["scores"]
    assert np.abs(np.array(got) - want).max() <= 1e-5, (got, want)


def test_run_takes_large_finite_readings_on_a_companded_channel_and_stays_finite(companded):
    """A companded channel's mean and std are in companded units: raw bounds made from them would skip a valid
    10 kA reading as a bad sample. Every finite reading is taken there; the volts channel keeps its bounds."""
    m, _, X = companded
    w = X[3].copy()
    w[5, 0], w[9, 0], w[12, 0] = 1e4, -3e38, 3e38
    r = invoke("run", m / "step.tflite", "-", input="".join(f"{a!r},{b!r}\n" for a, b in w.tolist()))
    assert r.exit_code == 0, r.output
    outs = [json.loads(ln) for ln in r.stdout.strip().splitlines()]
    assert len(outs) == len(w) and all(np.isfinite(o["scores"]).all() for o in outs)
    assert f"{len(w)} samples, 0 skipped, {len(w)} outputs" in r.stderr, r.stderr
    w[20, 1] = 1e30  # the linear channel: still a bad sample, counted and skipped
    r = invoke("run", m / "step.tflite", "-", input="".join(f"{a!r},{b!r}\n" for a, b in w.tolist()))
    assert r.exit_code == 0 and f"{len(w) - 1} samples, 1 skipped, {len(w) - 1} outputs" in r.stderr, r.stderr


def test_int8_step_model_of_a_companded_model_keeps_the_float_decisions(companded):
    _, q, _ = companded
    (rep,) = json.loads((q / "report.json").read_text())["models"]
    assert rep["vs_reference"]["argmax_agreement"] >= 0.99, rep


def test_c_export_refuses_companded_channels_by_reason(companded):
    from edgelstm.export.csource import refuse_reason
    from edgelstm.models.modeldir import load_config

    assert "companded (heavy-tailed) channels have no C form" in refuse_reason(load_config(companded[0]), "float")


def test_a_near_zero_scale_is_floored_so_companding_stays_finite_in_float32():
    x = np.zeros(1000)
    x[:10] = 3e38
    x[10:400] = 1e-40
    center, scale = heavy_tailed_scale(x)
    assert scale >= 3e38 * 1e-6
    assert np.isfinite(Compander([center], [scale])(x[:, None].astype(np.float32))).all()
    big = Compander([0.0], [1e-3])(np.array([[3e38], [-3e38]], np.float32))
    assert np.isfinite(big).all() and big[0, 0] == -big[1, 0] > 60
