"""`edgelstm convert`: float TFLite and ONNX exports that load in the device runtimes and match Keras."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import invoke, one_line_error


def heldout_windows(model_dir, n: int = 12) -> np.ndarray:
    """Normalized held-out windows of the real sample data (the split training used)."""
    from edgelstm.data.prepare import load_splits, model_inputs
    from edgelstm.models.modeldir import load_config

    cfg = load_config(model_dir)
    prep = load_splits(cfg)
    return model_inputs(cfg, prep.test.X[:n]).astype(np.float32)


def test_convert_tflite_writes_sequence_and_step_with_metadata(lstm_tflite):
    from edgelstm.export.tflite import interpreter
    from edgelstm.modelfile.read import read_metadata

    seq, step = lstm_tflite / "sequence.tflite", lstm_tflite / "step.tflite"
    assert read_metadata(seq)["kind"] == "sequence" and read_metadata(step)["kind"] == "step"
    assert read_metadata(seq)["inputs"][0] == {
        "name": "x",
        "role": "window",
        "shape": [1, 100, 6],
        "dtype": "float32",
        "scale": None,
        "zero_point": None,
    }
    ops = {o["op_name"] for o in interpreter(path=seq)._get_ops_details()}
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops and "WHILE" not in ops


def test_sequence_tflite_with_state_reset_between_windows_matches_keras(lstm_model, lstm_tflite):
    from conftest import litert_sequence_windows

    from edgelstm.models.modeldir import load_keras

    X = heldout_windows(lstm_model)
    ref = load_keras(lstm_model)[1].predict(X, verbose=0)
    blob = (lstm_tflite / "sequence.tflite").read_bytes()
    d_reset = np.abs(litert_sequence_windows(blob, X) - ref).max()
    d_carry = np.abs(litert_sequence_windows(blob, X, reset=False) - ref).max()
    print(f"lstm32 real windows: max|d| with reset {d_reset:.2e}, without {d_carry:.2e}")
    # The leak itself is shown below on an LSTM with long memory: this trained one forgets its previous window
    # within 100 samples (without reset 7e-7 since training augments; 4e-4 before), which is why it can be hidden.
    assert d_reset <= 1e-5, d_reset


@pytest.mark.slow  # builds a Keras model and runs the TF converter
def test_state_leak_without_reset_is_large_with_long_memory(tmp_path):
    """An LSTM that remembers (forget-gate bias 6) shows the leak plainly; the reset removes it."""
    from conftest import _tiny_model, litert_sequence_windows

    cfg, model = _tiny_model(arch="lstm", layers=1)
    kernel, rec, bias = model.get_layer("rnn0").get_weights()
    bias[cfg.units : 2 * cfg.units] = 6.0
    model.get_layer("rnn0").set_weights([kernel, rec, bias])
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    cfg.save(model_dir)
    model.save(model_dir / "model.keras")
    assert invoke("convert", model_dir, "--kind", "sequence").exit_code == 0
    X = np.random.default_rng(5).normal(0, 1, (8, cfg.window, cfg.n_features)).astype(np.float32)
    ref = model.predict(X, verbose=0)
    blob = (model_dir / "sequence.tflite").read_bytes()
    d_reset = np.abs(litert_sequence_windows(blob, X) - ref).max()
    d_carry = np.abs(litert_sequence_windows(blob, X, reset=False) - ref).max()
    print(f"tiny lstm: max|d| with reset {d_reset:.2e}, without {d_carry:.2e}")
    assert d_reset <= 1e-5, d_reset
    assert d_carry > 1e-2, d_carry


def test_step_tflite_matches_keras_on_real_windows(lstm_model, lstm_tflite):
    from conftest import engine_windows

    from edgelstm.models.modeldir import load_keras

    X = heldout_windows(lstm_model, 4)
    ref = load_keras(lstm_model)[1].predict(X, verbose=0)
    d = np.abs(engine_windows(lstm_tflite / "step.tflite", X) - ref).max()
    assert d <= 1e-5, d


@pytest.mark.parametrize("arch", ["lstm", "gru", "bilstm"])
def test_convert_onnx_matches_keras(arch, tiny_model_dir, tmp_path):
    import onnxruntime as ort

    from edgelstm.modelfile.read import read_metadata
    from edgelstm.models.modeldir import load_keras

    model_dir = tiny_model_dir(arch=arch, layers=1)
    r = invoke("convert", model_dir, "--to", "onnx", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    cfg, model = load_keras(model_dir)
    X = np.random.default_rng(3).normal(0, 1, (3, cfg.window, cfg.n_features)).astype(np.float32)
    ref = model.predict(X, verbose=0)
    seq = ort.InferenceSession(str(tmp_path / "sequence.onnx"), providers=["CPUExecutionProvider"])
    ys = np.concatenate([seq.run(["y"], {"x": w[None]})[0] for w in X])
    assert np.abs(ys - ref).max() <= 1e-5
    step = ort.InferenceSession(str(tmp_path / "step.onnx"), providers=["CPUExecutionProvider"])
    meta = read_metadata(tmp_path / "step.onnx")
    assert meta["opset"] == 17 and meta["format"] == "onnx"
    assert sorted(i.name for i in step.get_inputs()) == sorted(t["name"] for t in meta["inputs"])
    states = [t for t in meta["outputs"] if t["role"] == "state"]
    out = []
    for w in X:
        st = {t["state_input"]: np.zeros(t["shape"], np.float32) for t in states}
        for t in range(cfg.window):
            feed = {"x": w[t : t + 1], **st}
            if arch == "bilstm":
                feed["x_reverse"] = w[cfg.window - 1 - t : cfg.window - t]
            res = dict(zip(["y"] + [s["name"] for s in states], step.run(["y"] + [s["name"] for s in states], feed)))
            st = {s["state_input"]: res[s["name"]] for s in states}
        out.append(res["y"][0])
    assert np.abs(np.stack(out) - ref).max() <= 1e-5


def test_converter_crash_is_one_line_error_and_leaves_nothing(tiny_model_dir, tmp_path, monkeypatch):
    from edgelstm.export.worker import ABORT_ENV

    monkeypatch.setenv(ABORT_ENV, "1")
    model_dir = tiny_model_dir(arch="gru", layers=1)
    err = one_line_error(invoke("convert", model_dir, "--kind", "sequence", "-o", tmp_path), 3)  # ConverterCrash
    assert err == (
        f"Error: {model_dir}: converting the sequence model to tflite (float) crashed the converter "
        "(SIGABRT); try the other kind (--kind step|sequence) or the other format"
    )
    assert list(tmp_path.iterdir()) == []


def test_convert_bad_model_dir(tmp_path):
    err = one_line_error(invoke("convert", tmp_path / "nope"))
    assert err == f"Error: {tmp_path / 'nope'}: no such model directory"


def test_stacked_bilstm_converts_sequence_only(tiny_model_dir, tmp_path):
    model_dir = tiny_model_dir(arch="bilstm", layers=2)
    err = one_line_error(invoke("convert", model_dir, "--kind", "step", "-o", tmp_path))
    assert "stacked BiLSTM (2 layers) has no step model" in err
    r = invoke("convert", model_dir, "-o", tmp_path)
    assert r.exit_code == 0, r.output
    assert "has no step model; writing the sequence model only" in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["sequence.tflite"]
