"""A model trained with custom column names: the report, calibration and evaluate read its data the same way."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import invoke

CHANNELS = "acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z"


@pytest.fixture(scope="module")
def renamed_csv(activity_csv, tmp_path_factory):
    """The activity data with recording → session, label → activity, time → ts_ms (no time name edgelstm knows,
    so --channels must leave it out) and an extra numeric column battery."""
    out = tmp_path_factory.mktemp("renamed") / "renamed.csv"
    names = {"recording": "session", "label": "activity", "time": "ts_ms"}
    with open(activity_csv, newline="") as f, open(out, "w", newline="") as g:
        rows = csv.reader(f)
        w = csv.writer(g)
        header = next(rows)
        w.writerow([names.get(h, h) for h in header] + ["battery"])
        for i, row in enumerate(rows):
            w.writerow(row + [f"{4.2 - i * 1e-5:.5f}"])
    return out


@pytest.fixture(scope="module")
def renamed_model(renamed_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "renamed"
    r = invoke(
        "train",
        renamed_csv,
        "--label-col",
        "activity",
        "--group-col",
        "session",
        "--channels",
        CHANNELS,
        "--units",
        "16",
        "--epochs",
        "3",
        "-o",
        out,
    )
    assert r.exit_code == 0, r.output
    return out


def test_columns_are_recorded_at_training(renamed_model):
    cfg = json.loads((renamed_model / "config.json").read_text())
    assert cfg["training"]["columns"] == {
        "label_col": "activity",
        "target_cols": [],
        "group_col": "session",
        "subject_col": None,
        "channels": CHANNELS.split(","),
        "nan": "error",
        "sequences": False,
    }


def test_quantize_report_uses_the_training_columns(renamed_model, renamed_csv, tmp_path):
    """The report's reference numbers are the Keras model's on the held-out split of the renamed CSV, and the
    int8 model's are its own on that split."""
    from edgelstm.data.dataset import ColumnSpec, load
    from edgelstm.data.prepare import model_inputs, prepare
    from edgelstm.evaluate.metrics import classification
    from edgelstm.evaluate.predict import open_model
    from edgelstm.models.modeldir import load_keras

    r = invoke("quantize", renamed_model, "--mode", "int8", "--calibration", "small", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "report.json").read_text())

    cfg, model = load_keras(renamed_model)
    spec = ColumnSpec(label_col="activity", group_col="session", channels=CHANNELS.split(","))
    test = prepare(load(renamed_csv, spec), cfg.window, cfg.stride, cfg.task, seed=0).test
    keras_out = model.predict(model_inputs(cfg, test.X), verbose=0)
    keras = classification(test.y, keras_out.argmax(-1), cfg.labels)
    assert rep["n_windows"] == len(test.X) > 50
    assert rep["reference"]["metrics"]["accuracy"] == keras["accuracy"]
    assert rep["reference"]["metrics"]["confusion"] == keras["confusion"]
    stored = json.loads((renamed_model / "metrics.json").read_text())["test"]
    assert stored["accuracy"] == keras["accuracy"] and stored["n"] == len(test.X)

    (m,) = rep["models"]
    q = open_model(tmp_path / "step.int8.tflite")
    q_out = q.predict(test.X)
    assert m["metrics"]["accuracy"] == classification(test.y, q_out.argmax(-1), cfg.labels)["accuracy"]
    agree = float(np.mean(q_out.argmax(-1) == keras_out.argmax(-1)))
    assert m["vs_reference"]["argmax_agreement"] == pytest.approx(agree)
    print(
        f"renamed columns, lstm16 int8: accuracy {m['metrics']['accuracy']:.3f} "
        f"(keras {keras['accuracy']:.3f}), agreement {agree:.3f}"
    )


def test_evaluate_defaults_to_the_training_columns(renamed_model, renamed_csv, tmp_path):
    """`evaluate` of the model dir and of a .tflite reads the renamed CSV without --label-col / --group-col."""
    assert invoke("convert", renamed_model, "--kind", "sequence", "-o", tmp_path).exit_code == 0
    res = []
    for m in (renamed_model, tmp_path / "sequence.tflite"):
        r = invoke("evaluate", m, renamed_csv, "--json")
        assert r.exit_code == 0, r.output
        res.append(json.loads(r.stdout))
    assert res[0]["n"] == res[1]["n"] > 100
    assert res[0]["accuracy"] == res[1]["accuracy"]


def test_model_dirs_without_a_columns_record_get_the_defaults(tmp_path):
    """config.json written before columns were recorded: the split is rebuilt with the default columns."""
    from edgelstm.data.prepare import training_columns
    from edgelstm.models.config import ModelConfig

    cfg = ModelConfig(
        arch="lstm",
        task="classify",
        units=8,
        layers=1,
        window=20,
        n_features=2,
        n_outputs=2,
        channels=["a", "b"],
        training={"data": "x.csv", "seed": 0},
    )
    spec = training_columns(cfg)
    assert (spec.label_col, spec.group_col, spec.nan, tuple(spec.channels)) == (
        "label",
        "recording",
        "error",
        ("a", "b"),
    )
    cfg.training["columns"] = {"label_col": "activity", "group_col": "session", "nan": "drop"}
    spec = training_columns(cfg)
    assert (spec.label_col, spec.group_col, spec.nan) == ("activity", "session", "drop")
