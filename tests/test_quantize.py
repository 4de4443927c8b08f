"""`edgelstm quantize` + report, target checks, inspect and evaluate on real converted models."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import invoke, one_line_error


@pytest.fixture(scope="session")
def gru_coral(gru_model, tmp_path_factory):
    """The GRU quantized for the Coral target: int8 step model with int8 I/O, report, target check."""
    out = tmp_path_factory.mktemp("coral")
    r = invoke("quantize", gru_model, "--target", "coral-edgetpu", "--calibration", "small", "-o", out)
    assert r.exit_code == 0, r.output
    return out, r


def test_int8_step_model_meets_the_accuracy_bars(gru_coral):
    out, r = gru_coral
    rep = json.loads((out / "report.json").read_text())
    (m,) = rep["models"]
    print(
        f"gru32 int8 step: agreement {m['vs_reference']['argmax_agreement']:.4f}, "
        f"drop {m['accuracy_drop']:.4f}, max|d| {m['vs_reference']['max_abs_delta']:.4f}"
    )
    assert m["file"] == "step.int8.tflite" and m["quantization"] == "int8"
    assert m["vs_reference"]["argmax_agreement"] >= 0.99
    assert m["accuracy_drop"] <= 0.01
    assert rep["n_windows"] > 50
    for name in (
        "report.html",
        "report_confusion_step_int8_tflite.png",
        "report_error_step_int8_tflite.png",
        "report_confusion_model_keras.png",
    ):
        assert (out / name).stat().st_size > 500, name
    assert "step.int8.tflite: passes target coral-edgetpu" in r.output
    assert "calibrating 400/400" in r.stderr


def test_int8_lstm_step_model_meets_the_accuracy_bars(lstm_int8):
    """The demo's LSTM, int8 step model with float I/O (Raspberry Pi style): the bars of the issue."""
    out, r = lstm_int8
    (m,) = [m for m in json.loads((out / "report.json").read_text())["models"] if m["new"]]
    assert m["file"] == "step.int8.tflite"
    print(
        f"lstm32 int8 step: agreement {m['vs_reference']['argmax_agreement']:.4f}, "
        f"drop {m['accuracy_drop']:.4f}, max|d| {m['vs_reference']['max_abs_delta']:.4f}"
    )
    assert m["vs_reference"]["argmax_agreement"] >= 0.99
    assert m["accuracy_drop"] <= 0.01
    assert "warning" not in r.output


def test_int8_io_state_is_requantized_by_metadata(gru_coral):
    from edgelstm.modelfile.read import read_metadata

    meta = read_metadata(gru_coral[0] / "step.int8.tflite")
    ins = {t["name"]: t for t in meta["inputs"]}
    (h_out,) = [t for t in meta["outputs"] if t["role"] == "state"]
    assert ins["h0"]["dtype"] == "int8" and h_out["dtype"] == "int8" and h_out["state_input"] == "h0"
    assert ins["h0"]["scale"] > 0 and h_out["scale"] > 0
    assert meta["io"] == "int8" and meta["calibration"] == "small.toml"


def test_coral_check_passes_step_and_names_while_of_sequence(gru_model, gru_coral, tmp_path):
    r = invoke("check", gru_coral[0] / "step.int8.tflite", "--target", "coral-edgetpu")
    assert r.exit_code == 0, r.output
    assert "fits target coral-edgetpu" in r.output
    assert invoke("convert", gru_model, "--kind", "sequence", "-o", tmp_path).exit_code == 0
    r = invoke("check", tmp_path / "sequence.tflite", "--target", "coral-edgetpu")
    assert r.exit_code == 1
    assert "sequence.tflite: op WHILE (x1) is not supported by coral-edgetpu" in r.output


def test_coral_check_names_reverse_v2_of_a_bilstm(tiny_model_dir, tmp_path):
    model_dir = tiny_model_dir(arch="bilstm", layers=1)
    assert invoke("convert", model_dir, "--kind", "sequence", "-o", tmp_path).exit_code == 0
    r = invoke("check", tmp_path / "sequence.tflite", "--target", "coral-edgetpu")
    assert r.exit_code == 1
    assert "op REVERSE_V2 (x1) is not supported by coral-edgetpu" in r.output
    assert "op UNIDIRECTIONAL_SEQUENCE_LSTM (x2) is not supported" in r.output


@pytest.fixture(scope="module")
def big_lstm(tiny_model_dir, tmp_path_factory):
    """2x128 LSTM (≈200k parameters), untrained, calibrated from an NPZ of raw windows."""
    model_dir = tiny_model_dir(arch="lstm", layers=2, units=128)
    npz = tmp_path_factory.mktemp("calib") / "calib.npz"
    np.savez(npz, X=np.random.default_rng(0).normal(0, 1, (16, 20, 3)).astype(np.float32))
    return model_dir, npz


def test_int8_tflite_of_a_big_step_model_is_under_a_third_of_float(big_lstm, tmp_path):
    model_dir, npz = big_lstm
    assert invoke("convert", model_dir, "--kind", "step", "-o", tmp_path).exit_code == 0
    r = invoke("quantize", model_dir, "--mode", "int8", "--calibration", npz, "--no-report", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    f, q = (tmp_path / "step.tflite").stat().st_size, (tmp_path / "step.int8.tflite").stat().st_size
    print(f"2x128 lstm step: float {f} B, int8 {q} B, ratio {q / f:.3f}")
    assert q <= 0.3 * f


@pytest.fixture(scope="module")
def float_step(tmp_path_factory):
    """Factory: a model directory's float step.tflite from `convert --kind step`, converted once per model."""
    cache: dict = {}

    def get(model_dir):
        if model_dir not in cache:
            out = tmp_path_factory.mktemp("float-step")
            assert invoke("convert", model_dir, "--kind", "step", "-o", out).exit_code == 0
            cache[model_dir] = out / "step.tflite"
        return cache[model_dir]

    return get


def _convert_then_quantize(model_dir, mode: str, out, float_step):
    """`convert --kind step` (the float step.tflite) then `quantize --mode MODE` into `out`, as a user would (the
    conversion done once per model: int8 and int16x8, dynamic and float16 quantize the same float models)."""
    shutil.copy(float_step(model_dir), out / "step.tflite")
    npz = out / "c.npz"
    np.savez(npz, X=np.random.default_rng(0).normal(0, 1, (8, 20, 3)).astype(np.float32))
    r = invoke("quantize", model_dir, "--mode", mode, "--calibration", npz, "--no-report", "-o", out)
    assert r.exit_code == 0, r.output
    return r


@pytest.mark.parametrize("mode, units", [("int8", 12), ("int16x8", 12), ("dynamic", 64), ("float16", 64)])
def test_other_modes_are_smaller_and_load(mode, units, tiny_model_dir, float_step, tmp_path):
    """Every mode shrinks the file through the CLI, metadata and all (dynamic range leaves weight tensors under 1024
    values float: units 64; full integer: from 12 units, test_full_integer_step_files_are_smaller_than_float)."""
    from edgelstm.evaluate.predict import open_model

    r = _convert_then_quantize(tiny_model_dir(arch="lstm", layers=1, units=units), mode, tmp_path, float_step)
    path = tmp_path / f"step.{mode}.tflite"
    assert path.stat().st_size < (tmp_path / "step.tflite").stat().st_size
    assert "is not smaller than the float" not in r.output
    X = np.random.default_rng(1).normal(0, 1, (2, 20, 3)).astype(np.float32)
    ref = open_model(tmp_path / "step.tflite").predict(X)
    d = np.abs(open_model(path).predict(X) - ref).max()
    assert d < 0.1, d


def test_quantize_says_when_a_tiny_int8_file_is_not_smaller(tiny_model_dir, float_step, tmp_path):
    """At 4 units the int8 file is bigger than float (test_full_integer_step_files_are_smaller_than_float's
    docstring says why): quantize says so, with both sizes, instead of leaving the user to find out."""
    r = _convert_then_quantize(tiny_model_dir(arch="lstm", layers=1, units=4), "int8", tmp_path, float_step)
    size, float_size = ((tmp_path / n).stat().st_size for n in ("step.int8.tflite", "step.tflite"))
    assert size >= float_size
    notes = [line for line in r.output.splitlines() if line.startswith("note: step.int8.tflite")]
    assert notes == [
        f"note: step.int8.tflite ({size:,} B) is not smaller than the float step.tflite ({float_size:,} B): a model "
        "this small has more quantization parameters (~36 B per tensor) than int8 saves on its weights (3 B each; "
        "full-integer files win from ~12 units). Keep it for an int8-only target such as the Edge TPU; elsewhere the "
        "float file is smaller"
    ]


def _step_file_sizes(cfg, model, tmp_path) -> dict[str, int]:
    """Bytes of the compacted step .tflite in float, int8 (float I/O), int8 I/O and int16x8, built as `quantize`
    builds them (calibration samples from stepping the float model; the int8 LSTM's scaled cell state)."""
    from edgelstm.export.calibrate import step_samples
    from edgelstm.export.compact import compact_tflite
    from edgelstm.export.tflite import step_tflite
    from edgelstm.export.worker import representative
    from edgelstm.models.step import apply_cell_scales, build_step_model, scale_cell_state

    X = np.random.default_rng(0).normal(0, 1, (8, cfg.window, cfg.n_features)).astype(np.float32)
    sizes = {"float": len(compact_tflite(step_tflite(build_step_model(cfg, model))))}
    for mode, io in (("int8", "float"), ("int8", "int8"), ("int16x8", "float")):
        step = build_step_model(cfg, model)
        samples = step_samples(step, X, 200)
        if mode == "int8":
            apply_cell_scales(step, scale_cell_state(step, samples))
        npz = tmp_path / f"{mode}-{io}.npz"
        np.savez(npz, **samples)
        blob = step_tflite(step, mode, representative(str(npz), step.input_names), io=io)
        sizes[mode + ("-io" if io == "int8" else "")] = len(compact_tflite(blob))
    return sizes


@pytest.mark.parametrize(
    "kw",
    [
        dict(arch="lstm", layers=1),
        dict(arch="lstm", layers=1, peephole=True),
        dict(arch="gru", layers=1),
        dict(arch="bilstm", layers=1),
        dict(arch="lstm", layers=2),
        dict(arch="gru", layers=2),
        dict(arch="lstm", layers=1, task="regress", n_outputs=1),
    ],
    ids=["lstm", "peephole", "gru", "bilstm", "lstm-2layers", "gru-2layers", "lstm-regress"],
)
def test_full_integer_step_files_are_smaller_than_float(kw, tiny_model, tmp_path):
    """int8 (both I/O kinds) and int16x8 step files are smaller than float for every architecture from 12 units.

    Below that they are not: an int8 tensor carries ~36 bytes of quantization parameters and float I/O adds a
    QUANTIZE/DEQUANTIZE per input and output, while int8 saves only 3 bytes per weight. Measured (1 layer, 3
    features, 4 classes; float vs int8 with float I/O): LSTM 8 units 5,192 vs 5,464 B, GRU 4,688 vs 4,912 B,
    LSTM 2 units 3,752 vs 5,000 B. Gate fusion (stepmodel._tf_cell) and dropping the cell-state clip where it
    cannot change an output (export/prune.py) moved the break-even from 16 units down to 12."""
    cfg, model = tiny_model(units=12, **kw)
    sizes = _step_file_sizes(cfg, model, tmp_path)
    print(f"{kw} 12 units: " + ", ".join(f"{k} {v} B ({v / sizes['float']:.3f})" for k, v in sizes.items()))
    for mode in ("int8", "int8-io", "int16x8"):
        assert sizes[mode] < sizes["float"], (mode, sizes)


def test_onnx_static_qdq_step_model(gru_model, tmp_path):
    r = invoke("quantize", gru_model, "--mode", "int8", "--format", "onnx", "--calibration", "small", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "report.json").read_text())
    (m,) = rep["models"]
    print(f"gru32 onnx qdq: agreement {m['vs_reference']['argmax_agreement']:.4f} drop {m['accuracy_drop']:.4f}")
    assert m["file"] == "step.int8.onnx"
    assert m["vs_reference"]["argmax_agreement"] >= 0.99
    info = json.loads(invoke("inspect", tmp_path / "step.int8.onnx", "--json").stdout)
    assert info["ops"]["QuantizeLinear"] > 0 and info["metadata"]["quantization"] == "int8"


def test_wrong_feature_count_in_calibration_is_one_line_and_leaves_nothing(big_lstm, tmp_path):
    model_dir, _ = big_lstm
    npz = tmp_path / "bad.npz"
    np.savez(npz, X=np.zeros((4, 20, 5), np.float32))
    out = tmp_path / "out"
    err = one_line_error(invoke("quantize", model_dir, "--mode", "int8", "--calibration", npz, "-o", out))
    assert err == f"Error: {npz}: calibration data has 5 features; the model expects 3"
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--target", "toaster"],
            "Error: unknown target 'toaster'; choose one of android-arm64, coral-edgetpu, cortex-m4, cortex-m7, "
            "linux-x86_64, raspberrypi4-aarch64, raspberrypi5-aarch64",
        ),
        (
            ["--target", "coral-edgetpu", "--mode", "float16"],
            "Error: target coral-edgetpu cannot run float16 models; it runs int8",
        ),
        (
            ["--target", "linux-x86_64"],
            "Error: target linux-x86_64 prefers float models: export them with "
            "`edgelstm convert`, or pass --mode (int8, int16x8, dynamic, float16)",
        ),
        (
            ["--calibration", "nosuch"],
            "Error: unknown calibration recipe 'nosuch'; use one of default, small, a .toml or an .npz",
        ),
        (
            ["--format", "onnx", "--mode", "float16"],
            "Error: mode float16 is not available for ONNX; use int8 (static QDQ) or dynamic",
        ),
    ],
)
def test_quantize_bad_arguments(args, message, tiny_model_dir, tmp_path):
    err = one_line_error(invoke("quantize", tiny_model_dir(arch="gru", layers=1), *args, "-o", tmp_path))
    assert err == message
    assert list(tmp_path.iterdir()) == []


def test_unknown_mode_is_a_usage_error(tiny_model_dir):
    r = invoke("quantize", tiny_model_dir(arch="gru", layers=1), "--mode", "int4")
    assert r.exit_code == 2 and "Invalid value for '--mode'" in r.output


def test_inspect_and_corrupt_file(gru_coral, tmp_path):
    path = gru_coral[0] / "step.int8.tflite"
    info = json.loads(invoke("inspect", path, "--json").stdout)
    assert info["ops"]["FULLY_CONNECTED"] >= 3 and "WHILE" not in info["ops"]
    assert info["inputs"]["h0"]["dtype"] == "int8" and info["metadata"]["arch"] == "gru"
    assert info["size_bytes"] == path.stat().st_size
    text = invoke("inspect", path).output
    assert "FULLY_CONNECTED x" in text and "input h0: int8 [1, 32] scale" in text
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(path.read_bytes()[:300])
    err = one_line_error(invoke("inspect", bad))
    assert err.startswith(f"Error: {bad}: ")
    err = one_line_error(invoke("check", bad, "--target", "linux-x86_64"))
    assert err.startswith(f"Error: {bad}: ")


def test_evaluate_any_model_form_agrees(gru_model, gru_coral, activity_csv, tmp_path):
    assert invoke("convert", gru_model, "--to", "onnx", "--kind", "sequence", "-o", tmp_path).exit_code == 0
    res = {}
    for m in (gru_model, tmp_path / "sequence.onnx", gru_coral[0] / "step.int8.tflite"):
        r = invoke("evaluate", m, activity_csv, "--json")
        assert r.exit_code == 0, r.output
        res[m.name] = json.loads(r.stdout)
    keras, onnx_, int8 = (res[k] for k in (gru_model.name, "sequence.onnx", "step.int8.tflite"))
    assert keras["n"] == onnx_["n"] == int8["n"] > 100
    assert onnx_["accuracy"] == keras["accuracy"]
    assert abs(int8["accuracy"] - keras["accuracy"]) <= 0.01


def test_evaluate_wrong_channels_is_one_line(gru_coral, forecast_csv):
    """Data of another model (forecast CSV: time, load, temp) for the activity classifier: the first column it
    lacks is named, the label column, then (given one) the model's first channel."""
    model = gru_coral[0] / "step.int8.tflite"
    err = one_line_error(invoke("evaluate", model, forecast_csv), 2)
    assert err == (
        f"Error: {forecast_csv}: no label column 'label' (columns: time, load, temp); name it with --label-col"
    )
    err = one_line_error(invoke("evaluate", model, forecast_csv, "--label-col", "temp"), 2)
    assert err == f"Error: {forecast_csv}: no channel column 'acc_x' (columns: time, load, temp); check --channels"


@pytest.fixture(scope="module")
def gru_step(tiny_model_dir, tmp_path_factory):
    """A tiny GRU's float step.tflite, converted once for every target's check."""
    out = tmp_path_factory.mktemp("gru-step")
    assert invoke("convert", tiny_model_dir(arch="gru", layers=1), "--kind", "step", "-o", out).exit_code == 0
    return out / "step.tflite"


@pytest.mark.parametrize("name", __import__("edgelstm.targets.profile", fromlist=["target_names"]).target_names())
def test_every_target_file_is_valid(name, gru_step):
    from edgelstm.targets.check import check_model_full
    from edgelstm.targets.profile import MODES, load_target

    t = load_target(name)
    assert t.name == name and t.quantization in t.modes and set(t.modes) <= set(MODES)
    assert t.runtime and t.runtime_min_version and t.threads >= 1
    assert all(op.isupper() for op in t.allowed_ops)
    violations, _ = check_model_full(gru_step, t)
    assert bool(violations) == ("float" not in t.modes or t.int8_everywhere)


def test_minimum_version_limit_is_named_for_dynamic_models(tiny_model_dir, tmp_path):
    model_dir = tiny_model_dir(arch="gru", layers=1, units=64)  # dynamic range skips weights under 1024 values
    assert invoke("quantize", model_dir, "--mode", "dynamic", "--no-report", "-o", tmp_path).exit_code == 0
    r = invoke("check", tmp_path / "step.dynamic.tflite", "--target", "raspberrypi4-aarch64")
    assert r.exit_code == 0, r.output
    assert "op FULLY_CONNECTED version 12 cannot be loaded by tflite-runtime<=2.14" in r.output


def test_converter_crash_in_quantize_exits_3_with_one_line_and_no_partial_file(tiny_model_dir, tmp_path, monkeypatch):
    """A crash of our own (the worker aborts, as TF's converter does on some recurrent graphs): ConverterCrash,
    exit code 3 (not 2, bad input), one line naming the crash, and the output folder left as it was."""
    from edgelstm.errors import ConversionError, ConverterCrash
    from edgelstm.export.worker import ABORT_ENV

    assert issubclass(ConverterCrash, ConversionError) and ConverterCrash.exit_code == 3
    monkeypatch.setenv(ABORT_ENV, "1")
    model_dir = tiny_model_dir(arch="gru", layers=1)
    out = tmp_path / "out"
    out.mkdir()
    r = invoke("quantize", model_dir, "--kind", "step", "--mode", "dynamic", "--no-report", "-o", out)
    err = one_line_error(r, 3)
    assert r.output.strip() == err  # nothing else on stdout or stderr
    assert err == (
        f"Error: {model_dir}: converting the step model to tflite (dynamic) crashed the converter "
        "(SIGABRT); try the other kind (--kind step|sequence) or the other format"
    )
    assert list(out.iterdir()) == []  # no .partial file, no step.dynamic.tflite


@pytest.mark.parametrize(
    "agree, drop, expect",
    [
        (
            0.98,
            0.0,
            "warning: step.int8.tflite agrees with the float model on 98.0% of windows (< 99%); try --mode int16x8",
        ),
        (0.995, 0.02, "warning: step.int8.tflite loses 2.0% accuracy (> 1%); try --mode int16x8"),
        (0.995, 0.005, None),
    ],
)
def test_fidelity_warning_names_agreement_drop_and_int16x8(agree, drop, expect):
    from edgelstm.export.quantize import fidelity_warnings

    entry = {"file": "step.int8.tflite", "vs_reference": {"argmax_agreement": agree}, "accuracy_drop": drop}
    got = fidelity_warnings(entry, "int8")
    assert got[0].startswith(expect) if expect else got == [], got


def test_kind_both_on_a_gru_writes_the_step_model_and_says_why_not_the_sequence(gru_model, tmp_path):
    """issue 13.5: the sequence int8 conversion of a GRU cannot be made (the converter segfaults on its WHILE loop);
    --kind both writes what works, names what it could not make with the capabilities table's reason, exit 0."""
    from edgelstm.capabilities import why_not

    r = invoke("quantize", gru_model, "--kind", "both", "--calibration", "small", "--no-report", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.glob("*.tflite")) == ["step.int8.tflite"]
    reason = why_not("gru", "sequence", "tflite", "int8")
    assert reason and "WHILE" in reason
    assert f"not made: cannot make the int8 sequence model of this gru as tflite: {reason}" in r.stdout
    assert f"{tmp_path / 'step.int8.tflite'} (" in r.stdout


def test_kind_both_when_nothing_can_be_made_is_one_error(tiny_model_dir, tmp_path):
    """A stacked BiLSTM has no step model and its fused sequence LSTM has no 16x8: nothing requested can be made,
    so exit 2 with both reasons, and nothing written."""
    out = tmp_path / "out"
    model = tiny_model_dir(arch="bilstm", layers=2)
    r = invoke("quantize", model, "--kind", "both", "--mode", "int16x8", "--no-report", "-o", out)
    err = one_line_error(r)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM to 16x8" in err and "a stacked BiLSTM has no step model" in err, err
    assert not out.exists()
