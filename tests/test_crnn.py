"""The causal convolutional front-end (`train --conv K:F[xN]`): the step model carries each convolution's last K-1
inputs as one more state tensor, so a CRNN streams, quantizes to full int8 and fits the Coral profile like an
LSTM or GRU does."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import invoke, one_line_error

from edgelstm.capabilities import table_arch, why_not
from edgelstm.errors import InputError
from edgelstm.models.config import parse_conv


@pytest.mark.parametrize(
    "text, layers",
    [("5:32", [[5, 32]]), ("5:32x2", [[5, 32], [5, 32]]), ("3:16, 1:8", [[3, 16], [1, 8]]), ("", [])],
)
def test_parse_conv(text, layers):
    assert parse_conv(text) == layers


@pytest.mark.parametrize("text", ["5", "5:x2", "a:3", "0:8", "3:8x0"])
def test_parse_conv_refuses_malformed_specs(text):
    with pytest.raises(InputError, match="--conv"):
        parse_conv(text)


def test_capabilities_name_the_crnn_and_refuse_what_it_cannot_be():
    assert table_arch("gru", 1, conv=True) == "conv-gru" and table_arch("lstm", 2, True, conv=True) == "conv-peephole"
    assert "backward direction" in why_not(table_arch("bilstm", 1, conv=True))
    assert why_not("conv-lstm", "step", length="variable") is None
    assert why_not("conv-lstm", "step", "tflite", "int8", "edgetpu") is None
    assert "WHILE" in why_not("conv-gru", "sequence", "tflite", "int8")


def test_crnn_step_model_uses_only_ops_the_coral_profile_allows(tiny_model):
    from edgelstm.export.tflite import interpreter, step_tflite
    from edgelstm.models.step import build_step_model
    from edgelstm.targets.profile import load_target

    cfg, model = tiny_model(arch="lstm", layers=1, conv=[[5, 6], [3, 6]])
    step = build_step_model(cfg, model)
    assert [(n, u) for n, u in step.states if n.startswith("conv")] == [("conv0", 4 * 3), ("conv1", 2 * 6)]
    ops = {o["op_name"] for o in interpreter(step_tflite(step))._get_ops_details()}
    assert ops <= set(load_target("coral-edgetpu").allowed_ops), ops


@pytest.mark.slow
def test_train_refuses_a_conv_bilstm_before_training(activity_csv, tmp_path):
    r = invoke("train", activity_csv, "--arch", "bilstm", "--conv", "5:8", "-o", tmp_path / "m")
    assert one_line_error(r).startswith("Error: a convolutional front-end is causal")
    assert "epoch" not in r.output and not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def crnn(tmp_path_factory, activity_csv):
    """A CRNN (frames of 2 samples → conv 5:16 → GRU 24) trained briefly on the sample data, quantized for the
    Coral target. Frames make it a long series' classifier (fit.LONG_SERIES_RECIPE: max head, no early stopping);
    its inputs stay linear, which run_csv_rows's own normalization assumes."""
    out = tmp_path_factory.mktemp("crnn")
    m = out / "m"
    args = ["--arch", "gru", "--units", "24", "--conv", "5:16", "--frame", "2", "--epochs", "4", "--seed", "1"]
    args += ["--input-map", "auto"]
    r = invoke("train", activity_csv, *args, "-o", m)
    assert r.exit_code == 0, r.output
    r = invoke("quantize", m, "--target", "coral-edgetpu", "--calibration", "small", "-o", out / "coral")
    assert r.exit_code == 0, r.output
    return m, out / "coral", r


def test_crnn_int8_step_model_keeps_the_float_decisions_and_fits_coral(crnn):
    m, coral, r = crnn
    rep = json.loads((coral / "report.json").read_text())
    (q,) = rep["models"]
    assert q["file"] == "step.int8.tflite" and rep["n_windows"] > 50
    assert q["vs_reference"]["argmax_agreement"] >= 0.99 and q["accuracy_drop"] <= 0.01, q
    meta = json.loads((m / "config.json").read_text())
    assert meta["conv"] == [[5, 16]] and meta["frame"] == 2
    r = invoke("check", coral / "step.int8.tflite", "--target", "coral-edgetpu")
    assert r.exit_code == 0 and "fits target coral-edgetpu" in r.output, r.output


def test_crnn_int8_stream_through_run_equals_evaluate_engine(crnn, activity_csv, tmp_path):
    """`edgelstm run` over raw samples from zero state ends where the step engine ends over the same window; a
    frame model answers once per frame, at its last sample."""
    from conftest import engine_windows, run_csv_rows

    m, coral, _ = crnn
    path = coral / "step.int8.tflite"
    xn, outs = run_csv_rows(m, path, activity_csv, 80)
    assert [o["t"] for o in outs] == list(range(1, len(xn), 2))
    ref = [engine_windows(path, w[None])[0] for w in (xn[:40], xn)]
    for got, want in zip((outs[19], outs[-1]), ref):
        assert np.abs(np.array(got["scores"]) - want).max() <= 1e-6


@pytest.mark.slow
def test_crnn_onnx_step_model_on_onnxruntime_equals_keras(tiny_model, tmp_path):
    from conftest import engine_windows

    from edgelstm.export.onnx import step_onnx
    from edgelstm.models.step import build_step_model

    cfg, model = tiny_model(arch="lstm", layers=1, conv=[[4, 6]])
    X = np.random.default_rng(3).normal(0, 1, (5, cfg.window, cfg.n_features)).astype(np.float32)
    path = tmp_path / "step.onnx"
    path.write_bytes(step_onnx(build_step_model(cfg, model)))
    assert np.abs(engine_windows(path, X) - model(X, training=False).numpy()).max() <= 1e-5


def test_c_export_refuses_a_conv_front_end_and_frames_by_reason(tiny_model):
    from edgelstm.export.csource import refuse_reason

    cfg, _ = tiny_model(arch="gru", layers=1, conv=[[3, 4]])
    assert "convolutional front-end has no C form" in refuse_reason(cfg, "float")
    cfg, _ = tiny_model(arch="gru", layers=1, frame=4)
    assert "frame model" in refuse_reason(cfg, "int8")
    cfg, _ = tiny_model(arch="gru", layers=1)
    assert refuse_reason(cfg, "float") is None


@pytest.mark.parametrize(
    "window, exact, frame",
    [(100, True, 1), (250, False, 1), (1460, False, 12), (1344, False, 11), (1000, True, 8), (1001, True, 11)],
)
def test_auto_frame_steps_long_windows_in_frames(window, exact, frame):
    from edgelstm.train.fit import auto_frame

    assert auto_frame(window, exact) == frame


def test_a_window_from_an_npz_becomes_whole_frames(tmp_path):
    """Fixed windows of 1460 with the automatic frame of 12: the model's window is 1452 (the oldest 8 dropped)."""
    from edgelstm.data.dataset import load
    from edgelstm.train.fit import TrainOptions

    np.savez(tmp_path / "w.npz", X=np.zeros((4, 1460, 1), np.float32), y=np.array([0, 1, 0, 1]))
    opts = TrainOptions()
    opts.resolve(load(tmp_path / "w.npz"))
    assert (opts.window, opts.frame, opts.stride) == (1452, 12, 726)
