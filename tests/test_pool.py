"""The max-pooled head (`train --pool max`): the head sees the running max of the last layer's outputs (+1) over
the window, carried by the step model as one more state, so it streams, quantizes to full int8 and fits the Coral
profile like the last-state head does."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import engine_windows, invoke, one_line_error

from edgelstm.errors import InputError


def test_a_pooled_bilstm_and_an_unknown_pool_are_refused(tiny_model):
    with pytest.raises(InputError, match="BiLSTM's backward direction is not causal"):
        tiny_model(arch="bilstm", layers=1, pool="max")
    with pytest.raises(InputError, match="unknown pool 'mean'"):
        tiny_model(arch="lstm", layers=1, pool="mean")


def test_pooled_step_model_carries_the_running_max_and_uses_coral_ops(tiny_model):
    from edgelstm.export.tflite import interpreter, step_tflite
    from edgelstm.models.step import build_step_model
    from edgelstm.targets.profile import load_target

    cfg, model = tiny_model(arch="gru", layers=2, pool="max")
    step = build_step_model(cfg, model)
    assert step.states[-1] == ("pool", cfg.units) and step.output_names[-1] == "pool_out"
    ops = {o["op_name"] for o in interpreter(step_tflite(step))._get_ops_details()}
    assert "MAXIMUM" in ops and ops <= set(load_target("coral-edgetpu").allowed_ops), ops
    # pool_out = max(pool, h + 1) of the last layer: from zero state it is h + 1; a larger running max is kept
    fn = step.tf_function(batch=4)
    x = np.random.default_rng(0).normal(0, 1, (4, cfg.n_features)).astype(np.float32)
    zeros = {n: np.zeros((4, u), np.float32) for n, u in step.states}
    out = {k: v.numpy() for k, v in fn(x, *zeros.values()).items()}
    assert np.allclose(out["pool_out"], out["h1_out"] + 1, atol=1e-6) and (out["pool_out"] > 0).all()
    high = {**zeros, "pool": np.full((4, cfg.units), 1.999, np.float32)}
    assert np.allclose(fn(x, *high.values())["pool_out"].numpy(), 1.999)


def test_maxconv_head_carries_the_front_ends_running_max_too(tiny_model):
    """--pool maxconv: the head sees [max(h + 1), max(conv features + 1)], the second one more state `cpool` as wide
    as the last conv layer; refused without a front-end, and by the C export."""
    from edgelstm.export.csource import refuse_reason
    from edgelstm.export.tflite import interpreter, step_tflite
    from edgelstm.models.step import build_step_model
    from edgelstm.targets.profile import load_target

    with pytest.raises(InputError, match="without --conv there are none"):
        tiny_model(arch="lstm", layers=1, pool="maxconv")
    cfg, model = tiny_model(arch="lstm", layers=1, conv=[[3, 7]], pool="maxconv")
    assert "max-pooled head (--pool max) has no C form" in refuse_reason(cfg, "int8")
    step = build_step_model(cfg, model)
    assert step.states[-2:] == [("pool", cfg.units), ("cpool", 7)]
    assert model.get_layer("logits").get_weights()[0].shape == (cfg.units + 7, cfg.n_outputs)
    ops = {o["op_name"] for o in interpreter(step_tflite(step))._get_ops_details()}
    assert ops <= set(load_target("coral-edgetpu").allowed_ops), ops
    fn = step.tf_function(batch=4)
    x = np.random.default_rng(0).normal(0, 1, (4, cfg.n_features)).astype(np.float32)
    zeros = {n: np.zeros((4, u), np.float32) for n, u in step.states}
    out = {k: v.numpy() for k, v in fn(x, *zeros.values()).items()}
    # from zero state the conv sees only x (its buffer is zeros): cpool_out = ReLU(x · W[K-1] + b) + 1
    W, b = model.get_layer("conv0").get_weights()
    assert np.allclose(out["cpool_out"], np.maximum(x @ W[-1] + b, 0) + 1, atol=1e-5)
    high = {**zeros, "cpool": np.full((4, 7), 99.0, np.float32)}
    assert np.allclose(fn(x, *high.values())["cpool_out"].numpy(), 99.0)


def test_pooled_head_differs_from_the_last_state(tiny_model):
    """Same weights, the other head: the outputs differ, so the pooled path is the one that ran."""
    cfg, model = tiny_model(arch="lstm", layers=1, pool="max")
    cfg2, last = tiny_model(arch="lstm", layers=1)
    last.set_weights(model.get_weights())
    X = np.random.default_rng(2).normal(0, 1, (3, cfg.window, cfg.n_features)).astype(np.float32)
    assert np.abs(model(X).numpy() - last(X).numpy()).max() > 1e-3


def test_c_export_refuses_a_pooled_head_by_reason(tiny_model):
    from edgelstm.export.csource import refuse_reason

    cfg, _ = tiny_model(arch="lstm", layers=1, pool="max")
    assert "max-pooled head (--pool max) has no C form" in refuse_reason(cfg, "int8")


@pytest.mark.slow
def test_train_refuses_a_pooled_bilstm_before_training(activity_csv, tmp_path):
    r = invoke("train", activity_csv, "--arch", "bilstm", "--pool", "max", "-o", tmp_path / "m")
    assert "BiLSTM's backward direction is not causal" in one_line_error(r)
    assert "epoch" not in r.output and not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def pooled(tmp_path_factory, activity_csv):
    """The demo's LSTM 32 with a max-pooled head, trained on the sample data, quantized for the Coral target."""
    from conftest import train_and_quantize

    out = tmp_path_factory.mktemp("pool")
    return train_and_quantize(out, activity_csv, ["--units", "32", "--pool", "max"], ["--target", "coral-edgetpu"])


@pytest.mark.slow
def test_pooled_int8_step_model_keeps_the_float_decisions_and_fits_coral(pooled):
    m, coral = pooled
    rep = json.loads((coral / "report.json").read_text())
    (q,) = rep["models"]
    assert q["file"] == "step.int8.tflite" and rep["n_windows"] > 50
    assert q["vs_reference"]["argmax_agreement"] >= 0.99 and q["accuracy_drop"] <= 0.01, q
    assert json.loads((m / "config.json").read_text())["pool"] == "max"
    r = invoke("check", coral / "step.int8.tflite", "--target", "coral-edgetpu")
    assert r.exit_code == 0 and "fits target coral-edgetpu" in r.output, r.output


@pytest.mark.slow
def test_pooled_int8_stream_through_run_equals_the_step_engine(pooled, activity_csv):
    from conftest import run_csv_rows

    m, coral = pooled
    path = coral / "step.int8.tflite"
    xn, outs = run_csv_rows(m, path, activity_csv, 60)
    assert len(outs) == len(xn)
    for t in (29, len(xn) - 1):
        want = engine_windows(path, xn[None, : t + 1])[0]
        assert np.abs(np.array(outs[t]["scores"]) - want).max() <= 1e-6


@pytest.mark.slow
def test_run_says_a_pooled_head_needs_windows_or_resets_on_a_continuous_stream(pooled, activity_csv):
    """A running max never falls, so `run` over a continuous stream says how to bound it; with --window (each
    window from a fresh state) or --reset-after it has nothing to say."""
    _, coral = pooled
    path = coral / "step.int8.tflite"
    lines = "".join(",".join(["0.1"] * 6) + "\n" for _ in range(50))
    r = invoke("run", path, "-", input=lines)
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 50, r.output
    note = f"note: {path}: the head pools over every sample since the last reset (--pool max); for a continuous"
    assert note in r.stderr, r.stderr
    for more in (["--window", "40", "--hop", "10"], ["--reset-after", "5"]):
        r = invoke("run", path, "-", *more, input=lines)
        assert r.exit_code == 0 and "pools over every sample" not in r.stderr, (more, r.stderr)
    assert len(r.stdout.splitlines()) == 50


@pytest.mark.slow
def test_pooled_onnx_step_model_on_onnxruntime_equals_keras(tiny_model, tmp_path):
    from edgelstm.export.onnx import step_onnx
    from edgelstm.models.step import build_step_model

    cfg, model = tiny_model(arch="lstm", layers=1, pool="max")
    X = np.random.default_rng(3).normal(0, 1, (5, cfg.window, cfg.n_features)).astype(np.float32)
    path = tmp_path / "step.onnx"
    path.write_bytes(step_onnx(build_step_model(cfg, model)))
    assert np.abs(engine_windows(path, X) - model(X, training=False).numpy()).max() <= 1e-5
