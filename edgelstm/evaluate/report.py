"""The report quantize writes beside the models (ST-validate style), for a user to send a colleague.

Every model file in the folder (the Keras reference, float/dynamic/int8/int16x8 .tflite, .onnx) scored on the
held-out split through the device runner: accuracy and macro-F1 (or RMSE/MAE), agreement with the float Keras
outputs, size, latency per step measured here by `runtime.bench` (median and mean ± std), the TFLite Micro arena
where tflite-micro is installed, against the microcontroller budgets in targets/. report.json + one
self-contained report.html (the PNGs inlined) + the PNGs.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from .metrics import agreement, scores

MODEL_SUFFIXES = (".tflite", ".onnx")
QUANT_ORDER = ("float", "float16", "dynamic", "int16x8", "int8")
LATENCY_STEPS, LATENCY_WINDOWS = 300, 60  # cheap: a fraction of a second per file


def model_files(folder: Path, first: list[Path] = ()) -> list[Path]:
    """`first` and every .tflite/.onnx in `folder` (no hidden or partial files), sequence before step, then float
    before the quantized forms, TFLite before ONNX."""

    def key(p: Path):
        parts = p.name.split(".")
        quant = parts[1] if len(parts) > 2 else "float"
        return (p.suffix != ".tflite", parts[0], QUANT_ORDER.index(quant) if quant in QUANT_ORDER else 9, p.name)

    found = {p.resolve(): p for p in first}
    if folder.is_dir():
        for p in folder.iterdir():
            if p.suffix in MODEL_SUFFIXES and not p.name.startswith(".") and p.is_file():
                found.setdefault(p.resolve(), p)
    return sorted(found.values(), key=key)


def build_report(
    model_dir: Path,
    models: list[Path],
    data: str | None = None,
    progress: Callable[[str], None] | None = None,
    beside: Path | None = None,
) -> dict:
    """Evaluate the Keras reference, `models` and (with `beside`) every other model file in that folder on the
    held-out split of the training data; entries of `models` are marked `new`."""
    from .. import __version__
    from ..data.prepare import load_splits
    from ..models.cost import config_macs
    from .predict import open_model

    say = progress or (lambda _m: None)
    ref = open_model(model_dir)
    cfg = ref.cfg
    test = load_splits(cfg, data).test
    if not len(test):
        raise InputError(f"{model_dir}: training held out no test split (cross-validated or tuned); no report")
    classify = ref.meta["task"] == "classify"
    ref_out = ref.predict(test.X)
    new = {Path(p).resolve() for p in models}
    report = {
        "model_dir": str(model_dir),
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "edgelstm_version": __version__,
        "model": f"{cfg.arch} {cfg.units}×{cfg.layers}",
        "params": ref.params,
        "macs_per_step": config_macs(cfg),
        "n_features": cfg.n_features,
        "n_windows": int(len(test.X)),
        "task": ref.meta["task"],
        "reference": {"file": ref.reference_file, "metrics": scores(ref.meta, test.y, ref_out)},
        "models": [],
        "skipped": [],
        "budgets": _budgets(),
    }
    deltas = {}
    for path in model_files(beside, list(models)) if beside is not None else list(models):
        say(f"report: evaluating {path.name} on {len(test.X)} held-out windows")
        try:
            p = open_model(path)
        except Exception as ex:  # a foreign file in the folder: named in the report, never fatal
            report["skipped"].append({"file": path.name, "why": str(ex).splitlines()[0]})
            continue
        out = p.predict(test.X)
        m = scores(p.meta, test.y, out)
        entry = {
            "file": path.name,
            "new": path.resolve() in new,
            "kind": p.meta["kind"],
            "quantization": p.meta["quantization"],
            "size_bytes": path.stat().st_size,
            "metrics": m,
            "vs_reference": agreement(ref_out, out, classify),
            "latency": _latency(path),
            "ram_bytes": _arena(path, p.meta),
        }
        if classify:
            entry["accuracy_drop"] = report["reference"]["metrics"]["accuracy"] - m["accuracy"]
        report["models"].append(entry)
        deltas[path.name] = out - ref_out
    report["_deltas"] = deltas
    return report


def _latency(path: Path) -> dict | None:
    """The runtime bench's runner statistics per step (or window), a few hundred of them, in this run."""
    from ..runtime.bench import bench

    try:
        r = bench(path, count=LATENCY_STEPS, warmup=30)
        if r["unit"] == "window":
            r = bench(path, count=LATENCY_WINDOWS, warmup=5)
    except Exception as ex:  # the report still stands without a latency; say why in its place
        return {"error": str(ex).splitlines()[0]}
    s = r["runner"]
    return {
        "unit": r["unit"],
        "backend": r["backend"],
        **{k: s[k] for k in ("count", "median_us", "mean_us", "std_us")},
    }


def _arena(path: Path, meta: dict) -> int | None:
    """RAM a microcontroller needs for a step .tflite: TFLite Micro's tensor arena, measured (None without
    tflite-micro, or for a model it cannot run)."""
    if path.suffix != ".tflite" or meta.get("kind") != "step":
        return None
    try:
        from ..targets.tflm import arena_bytes

        return arena_bytes(path.read_bytes())
    except Exception:  # tflite-micro missing, or an op it lacks: no figure rather than a wrong one
        return None


def _budgets() -> list[dict]:
    """The flash/RAM budgets of the microcontroller targets (targets/*.toml with flash_bytes/ram_bytes)."""
    from ..targets.profile import load_target, target_names

    out = []
    for name in target_names():
        t = load_target(name)
        if t.flash_bytes and t.ram_bytes:
            out.append({"target": t.name, "flash_bytes": t.flash_bytes, "ram_bytes": t.ram_bytes})
    return out


def write_report(report: dict, out_dir: Path) -> Path:
    """report.json, report.html and the PNGs, next to the models; each file written whole (temp + rename)."""
    from .. import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    deltas = report.pop("_deltas", {})
    classify = report["task"] == "classify"
    pngs: dict[str, list[str]] = {}
    entries = [("model.keras", report["reference"]["metrics"])] + [(e["file"], e["metrics"]) for e in report["models"]]
    for name, m in entries:
        stem = name.replace(".", "_")
        pngs[name] = []
        if classify:
            p = out_dir / f"report_confusion_{stem}.png"
            plots.confusion_matrix(m["confusion"], m["labels"], p, f"{name} (held-out)")
            pngs[name].append(p.name)
        if name in deltas:
            p = out_dir / f"report_error_{stem}.png"
            plots.error_histogram(deltas[name], p, f"{name} − float reference")
            pngs[name].append(p.name)
    report["plots"] = pngs
    _atomic(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    _atomic(out_dir / "report.html", _html(report, out_dir))
    return out_dir / "report.json"


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


# (key, header with unit, one-line explanation): the table's columns and the glossary under it
COLUMNS_CLASSIFY = [
    ("accuracy", "accuracy", "share of held-out windows classified correctly (0–1)"),
    ("macro_f1", "macro-F1", "F1 score averaged over the classes, each class counting the same (0–1)"),
]
COLUMNS_REGRESS = [
    ("rmse", "RMSE (data units)", "root-mean-square error against the truth, in the target's units"),
    ("mae", "MAE (data units)", "mean absolute error against the truth, in the target's units"),
]
COLUMNS_VS = [
    ("argmax_agreement", "same class as Keras (%)", "held-out windows where this file picks the Keras model's class"),
    ("max_abs_delta", "max |Δ| vs Keras", "largest difference of any output value from the float Keras model's"),
    ("rmse", "RMSE vs Keras", "root-mean-square difference of the outputs from the float Keras model's"),
    ("cosine", "cosine vs Keras", "cosine similarity of all outputs with the float Keras model's (1 = same)"),
    ("l2r", "relative error ‖Δ‖/‖Keras‖", "relative L2 error: norm of the output difference over the Keras norm"),
]


def _num(v, digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else html.escape(str(v))


def _sig(v) -> str:
    """Three significant figures: differences span 1e-7 (float files) to 1e-1 (int8)."""
    if v is None:
        return ""
    text = f"{v:.3g}"
    return text if "." in text or "e" in text else f"{v:.3f}"  # 1.000, not 1: a measured value, not a count


def _kb(n) -> str:
    return "" if n is None else f"{n / 1024:.1f}"


def _inline(out_dir: Path, name: str) -> str:
    data = base64.b64encode((out_dir / name).read_bytes()).decode()
    return f"<img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>"


def _html(r: dict, out_dir: Path) -> str:
    classify = r["task"] == "classify"
    cols = COLUMNS_CLASSIFY if classify else COLUMNS_REGRESS
    vcols = COLUMNS_VS if classify else COLUMNS_VS[1:]
    heads = (
        ["model file", "form", "quantization", "size (KB)"]
        + [h for _, h, _ in cols]
        + [h for _, h, _ in vcols]
        + ["latency median (µs)", "latency mean ± std (µs)", "RAM (KB, TFLM arena)", "fits"]
    )
    ref = r["reference"]["metrics"]
    blank = "<td></td>"
    rows = [
        "<tr class='ref'><td>model.keras (float reference)</td><td>sequence</td><td>float</td><td></td>"
        + "".join(f"<td>{_num(ref[k])}</td>" for k, _, _ in cols)
        + blank * (len(vcols) + 4)
        + "</tr>"
    ]
    for e in r["models"]:
        v, lat = e["vs_reference"], e.get("latency") or {}
        agree = f"{100 * v['argmax_agreement']:.1f}" if "argmax_agreement" in v else None
        cells = [v[k] if k != "argmax_agreement" else agree for k, _, _ in vcols]
        fits = [
            b["target"]
            for b in r.get("budgets", [])
            if e.get("ram_bytes") is not None
            and e["size_bytes"] <= b["flash_bytes"]
            and e["ram_bytes"] <= b["ram_bytes"]
        ]
        per = " /window" if lat.get("unit") == "window" else ""
        latency = (
            [f"{lat['median_us']:.1f}{per}", f"{lat['mean_us']:.1f} ± {lat['std_us']:.1f}{per}"]
            if "median_us" in lat
            else [html.escape(lat.get("error", "")), ""]
        )
        rows.append(
            f"<tr><td>{html.escape(e['file'])}</td><td>{e['kind']}</td><td>{e['quantization']}</td>"
            f"<td>{_kb(e['size_bytes'])}</td>"
            + "".join(f"<td>{_num(e['metrics'][k])}</td>" for k, _, _ in cols)
            + "".join(f"<td>{c if isinstance(c, str) else _sig(c)}</td>" for c in cells)
            + "".join(f"<td>{c}</td>" for c in latency)
            + f"<td>{_kb(e.get('ram_bytes'))}</td><td>{html.escape(', '.join(fits))}</td></tr>"
        )
    glossary = [
        ("form", "sequence: the whole window in one call; step: one sample per call, the recurrent state outside"),
        ("size (KB)", "the file's size, 1 KB = 1024 bytes; on a microcontroller this is the model's flash"),
        *[(h, d) for _, h, d in cols + vcols],
        (
            "latency",
            f"per step through edgelstm's runner on this machine, a sequence file's per window (/window): "
            f"{LATENCY_STEPS} timed steps or {LATENCY_WINDOWS} windows after a warm-up; `edgelstm bench FILE` times "
            "more, beside the interpreter's own loop",
        ),
        ("RAM (KB, TFLM arena)", "the smallest TFLite Micro tensor arena the step .tflite runs in (measured)"),
        ("fits", "microcontroller targets whose flash and RAM budgets (targets/*.toml) hold the file and its arena"),
    ]
    budgets = ", ".join(
        f"{b['target']} {b['flash_bytes'] // 1024} KB flash / {b['ram_bytes'] // 1024} KB RAM"
        for b in r.get("budgets", [])
    )
    skipped = "".join(f"<li>{html.escape(s['file'])}: {html.escape(s['why'])}</li>" for s in r.get("skipped", []))
    figures = {kind: [] for kind in ("confusion", "error")}
    for ps in r["plots"].values():
        for p in ps:
            figures["confusion" if p.startswith("report_confusion_") else "error"].append(
                f"<figure>{_inline(out_dir, p)}</figure>"
            )
    metrics = ["accuracy", "macro_f1"] if classify else ["rmse", "mae"]
    headline = ", ".join(f"{dict((k, h) for k, h, _ in cols)[k]} {_num(ref[k])}" for k in metrics)
    return (
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>edgelstm report: "
        f"{html.escape(Path(r['model_dir']).name)}</title>"
        "<style>body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;font-size:14px}"
        "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child"
        "{text-align:left}th{background:#f3f3f3;vertical-align:bottom}tr.ref{background:#f8f8ff}"
        ".row{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0}img{width:360px}"
        "dt{font-weight:bold;float:left;clear:left;width:14em}dd{margin-left:15em}</style>"
        f"<h1>edgelstm report: {html.escape(Path(r['model_dir']).name)}</h1>"
        f"<p class='meta'>created {html.escape(r['created'])} · edgelstm {html.escape(r['edgelstm_version'])} · "
        f"{html.escape(r['model'])} · {r['params']:,} parameters · {r['macs_per_step']:,} MACs per step · "
        f"{r['n_features']} features · {r['n_windows']} held-out windows (the test split) · "
        f"Keras reference: {headline}</p>"
        f"<p>{html.escape(r['model_dir'])}. Every model file in this folder, scored on the same windows through the "
        "runner a device uses; the Δ columns compare each file's outputs with the float Keras model's.</p>"
        f"<table><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in heads)}</tr>{''.join(rows)}</table>"
        + (f"<p>Not scored:</p><ul>{skipped}</ul>" if skipped else "")
        + (f"<p>Microcontroller budgets: {html.escape(budgets)}.</p>" if budgets else "")
        + "<h2>Columns</h2><dl>"
        + "".join(f"<dt>{html.escape(h)}</dt><dd>{html.escape(d)}</dd>" for h, d in glossary)
        + "</dl>"
        + (f"<h2>Confusion matrices (held-out)</h2><div class='row'>{''.join(figures['confusion'])}</div>" * classify)
        + f"<h2>Output differences from the float reference</h2><div class='row'>{''.join(figures['error'])}</div>"
        + "</html>\n"
    )
