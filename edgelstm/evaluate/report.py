"""Accuracy report, ST-validate style: float reference vs each converted model on the held-out split.

Metrics per model (accuracy, macro-F1 or RMSE, MAE against the truth) and against the reference (RMSE, MAE,
cosine, max |Δ| of the outputs, argmax agreement); report.json + report.html + PNGs (confusion, error histogram).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable
from pathlib import Path

from .metrics import agreement, scores


def build_report(
    model_dir: Path, models: list[Path], data: str | None = None, progress: Callable[[str], None] | None = None
) -> dict:
    """Evaluate the Keras reference and each model file on the held-out split of the training data."""
    from ..data.prepare import load_splits
    from .predict import open_model

    ref = open_model(model_dir)
    test = load_splits(ref.cfg, data).test
    classify = ref.meta["task"] == "classify"
    ref_out = ref.predict(test.X)
    report = {
        "model_dir": str(model_dir),
        "n_windows": int(len(test.X)),
        "task": ref.meta["task"],
        "reference": {"file": "model.keras", "metrics": scores(ref.meta, test.y, ref_out)},
        "models": [],
    }
    deltas = {}
    for path in models:
        if progress:
            progress(f"report: evaluating {path.name} on {len(test.X)} held-out windows")
        p = open_model(path)
        out = p.predict(test.X)
        m = scores(p.meta, test.y, out)
        entry = {
            "file": path.name,
            "kind": p.meta["kind"],
            "quantization": p.meta["quantization"],
            "size_bytes": path.stat().st_size,
            "metrics": m,
            "vs_reference": agreement(ref_out, out, classify),
        }
        if classify:
            entry["accuracy_drop"] = report["reference"]["metrics"]["accuracy"] - m["accuracy"]
        report["models"].append(entry)
        deltas[path.name] = out - ref_out
    report["_deltas"] = deltas
    return report


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
    _atomic(out_dir / "report.html", _html(report))
    return out_dir / "report.json"


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def _html(r: dict) -> str:
    classify = r["task"] == "classify"
    cols = ["accuracy", "macro_f1"] if classify else ["rmse", "mae"]
    vcols = ["argmax_agreement"] * classify + ["max_abs_delta", "rmse", "mae", "cosine", "l2r"]
    head = "".join(f"<th>{c}</th>" for c in ["model", "kind", "quantization", "KB", *cols, *(f"Δ {c}" for c in vcols)])
    rows = [
        "<tr><td>model.keras (reference)</td><td>sequence</td><td>float</td><td></td>"
        + "".join(f"<td>{_fmt(r['reference']['metrics'][c])}</td>" for c in cols)
        + "<td></td>" * len(vcols)
        + "</tr>"
    ]
    for e in r["models"]:
        rows.append(
            f"<tr><td>{html.escape(e['file'])}</td><td>{e['kind']}</td><td>{e['quantization']}</td>"
            f"<td>{e['size_bytes'] / 1024:.1f}</td>"
            + "".join(f"<td>{_fmt(e['metrics'][c])}</td>" for c in cols)
            + "".join(f"<td>{_fmt(e['vs_reference'][c])}</td>" for c in vcols)
            + "</tr>"
        )
    imgs = "".join(
        f"<figure><img src='{html.escape(p)}'><figcaption>{html.escape(p)}</figcaption></figure>"
        for ps in r["plots"].values()
        for p in ps
    )
    return (
        "<!doctype html><meta charset='utf-8'><title>edgelstm accuracy report</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "figure{display:inline-block}</style>"
        f"<h1>Accuracy report</h1><p>{html.escape(r['model_dir'])}: {r['n_windows']} held-out windows; "
        "Δ columns compare each model's outputs with the float Keras reference.</p>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table>{imgs}\n"
    )
