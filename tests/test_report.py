"""report.html as a user sends it to a colleague: every model file beside it scored, readable headers with units,
sizes, parameters, MACs, latency, RAM against the MCU budgets, the confusion matrices inline; rendered by a real
headless Chromium (DOM text and a screenshot, kept under the test's tmp folder)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report_dir(lstm_int8):
    return lstm_int8


def test_report_scores_every_model_file_beside_it(report_dir, lstm_model):
    from edgelstm import __version__
    from edgelstm.models.cost import macs_per_step
    from edgelstm.models.modeldir import load_keras

    out, r = report_dir
    rep = json.loads((out / "report.json").read_text())
    files = [(m["file"], m["new"], m["kind"], m["quantization"]) for m in rep["models"]]
    assert files == [
        ("sequence.tflite", False, "sequence", "float"),
        ("step.tflite", False, "step", "float"),
        ("step.int8.tflite", True, "step", "int8"),
    ]
    assert [s["file"] for s in rep["skipped"]] == ["notes.tflite"]
    assert rep["params"] == load_keras(lstm_model)[1].count_params()
    assert rep["macs_per_step"] == macs_per_step("lstm", 32, 1, 6, 4) == 5088
    assert rep["edgelstm_version"] == __version__ and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", rep["created"])
    for m in rep["models"]:
        assert m["size_bytes"] == (out / m["file"]).stat().st_size
        lat = m["latency"]
        assert lat["unit"] == ("window" if m["kind"] == "sequence" else "step") and lat["count"] > 0
        assert 0 < lat["median_us"] and 0 < lat["mean_us"] and lat["std_us"] >= 0
        assert m["vs_reference"]["argmax_agreement"] >= 0.99  # floats exactly, int8 within the quantize bars
    # RAM: TFLite Micro's arena of the step files, measured; a 32-unit LSTM fits the Cortex-M4 budget
    step_ram = [m["ram_bytes"] for m in rep["models"] if m["kind"] == "step"]
    assert all(1024 < b < 16384 for b in step_ram), step_ram
    assert {b["target"] for b in rep["budgets"]} >= {"cortex-m4", "cortex-m7"}
    # the float files beside are scored, not judged: no fidelity warning can name them
    assert "warning" not in r.output


def test_report_html_is_self_contained(report_dir):
    out, _ = report_dir
    page = (out / "report.html").read_text()
    srcs = re.findall(r"src='([^']*)'", page)
    assert len(srcs) == 2 * 4 - 1  # a confusion matrix per model (Keras + 3 files), an error histogram per file
    assert all(s.startswith("data:image/png;base64,") for s in srcs)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report_dir, tmp_path):
    """Chromium's DOM text has the readable headers with units, accuracies as 0.000 and every file; the screenshot
    (a test artifact: tmp_path/report.png) is a full page of table and matrices, not a blank one."""
    from PIL import Image

    out, _ = report_dir
    rep = json.loads((out / "report.json").read_text())
    url = (out / "report.html").as_uri()
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "", dom))
    text = re.sub(r"\s+", " ", text)
    for header in (
        "model file",
        "size (KB)",
        "accuracy",
        "macro-F1",
        "same class as Keras (%)",
        "max |Δ| vs Keras",
        "relative error ‖Δ‖/‖Keras‖",
        "latency median (µs)",
        "latency mean ± std (µs)",
        "RAM (KB, TFLM arena)",
        "Confusion matrices (held-out)",
    ):
        assert header in text, header
    for raw_key in ("argmax_agreement", "max_abs_delta", "macro_f1", "l2r", "size_bytes"):
        assert raw_key not in text, raw_key
    assert f"edgelstm {rep['edgelstm_version']}" in text and rep["created"] in text
    assert f"{rep['params']:,} parameters" in text and "5,088 MACs per step" in text
    for m in rep["models"]:
        assert f"{m['file']} {m['kind']} {m['quantization']} {m['size_bytes'] / 1024:.1f} " in text
        assert f"{m['metrics']['accuracy']:.3f}" in text
        assert f"{m['latency']['median_us']:.1f}" in text
    assert re.search(r"\b1\.000\b|\b0\.\d{3}\b", text) and not re.search(r"<td>1</td>", dom)

    shot = tmp_path / "report.png"
    subprocess.run(
        base + ["--window-size=1400,1600", "--hide-scrollbars", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    img = Image.open(shot).convert("RGB")
    assert img.size == (1400, 1600)
    small = img.resize((140, 160))
    pixels = list(small.getdata())
    ink = sum(1 for p in pixels if sum(p) < 600) / len(pixels)  # text, table rules, matrix cells
    dark_blue = sum(1 for r, g, b in pixels if b > 80 and r < 60)  # the confusion matrices' diagonals
    print(f"screenshot {shot}: {shot.stat().st_size} B, ink {ink:.1%}, {len(set(pixels))} colours, blue {dark_blue}")
    assert shot.stat().st_size > 50_000 and ink > 0.05 and len(set(pixels)) > 100 and dark_blue > 10
