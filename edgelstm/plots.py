"""PNG reports people would rather look at than read (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._deps import require


def _plt():
    mpl = require("matplotlib", "train")
    mpl.use("Agg")
    return require("matplotlib.pyplot", "train")


def training_curves(history: dict[str, list[float]], path: Path, title: str = "") -> Path:
    plt = _plt()
    metrics = [k for k in history if not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, k in zip(axes[0], metrics):
        epochs = np.arange(1, len(history[k]) + 1)
        ax.plot(epochs, history[k], label="train")
        if f"val_{k}" in history:
            ax.plot(epochs, history[f"val_{k}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(k)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def confusion_matrix(matrix: list[list[int]], labels: list[str], path: Path, title: str = "") -> Path:
    plt = _plt()
    m = np.asarray(matrix)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * n, 1.0 + 0.8 * n))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_title(title or "confusion (held-out)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def error_histogram(deltas: np.ndarray, path: Path, title: str = "") -> Path:
    """Histogram of output differences (quantized − float reference)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    d = np.asarray(deltas, dtype=np.float64).ravel()
    ax.hist(d, bins=60, color="#4c72b0")
    ax.set_xlabel("output − float reference")
    ax.set_ylabel("count")
    ax.set_yscale("log")
    ax.set_title(title or "output error")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def distill_report(report: dict, path: Path) -> Path:
    """Teacher, distilled student and student-without-teacher side by side: quality, then size and compute."""
    plt = _plt()
    models = report["models"]
    names = [f"{m['role']}\n{m['model']}" for m in models]
    keys = ["accuracy", "macro_f1"] if report["task"] == "classify" else ["rmse", "mae"]
    colors = ["#7f7f7f", "#1f77b4", "#ff7f0e"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    x = np.arange(len(models))
    for j, key in enumerate(keys):
        vals = [m["test"][key] for m in models]
        bars = axes[0].bar(
            x + (j - 0.5) * 0.38, vals, 0.38, label=key, color=colors[: len(models)], alpha=1.0 if j == 0 else 0.55
        )
        axes[0].bar_label(bars, fmt="%.3f", fontsize=7)
    axes[0].set_xticks(x, names, fontsize=8)
    axes[0].set_title(" / ".join(keys) + " (held-out)" + (" — solid, light" if len(keys) == 2 else ""))
    for ax, key, title in ((axes[1], "params", "parameters"), (axes[2], "macs_per_step", "MACs per step")):
        vals = [m[key] for m in models]
        bars = ax.bar(x, vals, color=colors[: len(models)])
        ax.bar_label(bars, labels=[f"{v:,}" for v in vals], fontsize=8)
        ax.set_xticks(x, names, fontsize=8)
        ax.set_title(title)
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    int8 = "; ".join(
        f"{m['role']} int8 {m['int8_bytes'] / 1024:.1f} KB, {m['step_latency_us']:.1f} µs/step"
        for m in models
        if m.get("int8_bytes") is not None
    )
    fig.suptitle(
        f"distillation: T={report['temperature']:g}, alpha={report['alpha']:g}" + (f" — {int8}" if int8 else ""),
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def pareto_front(xs: list[float], ys: list[float], higher_better: bool = True) -> list[int]:
    """Indices of the points no other point beats on both x (smaller is better) and y, sorted by x."""
    sign = 1 if higher_better else -1
    order = sorted(range(len(xs)), key=lambda i: (xs[i], -sign * ys[i]))
    front, best = [], -np.inf
    for i in order:
        if sign * ys[i] > best:
            front.append(i)
            best = sign * ys[i]
    return front


def pareto(rows: list[dict], metric: str, path: Path, best: str = "") -> Path:
    """tune's trials: int8 score against int8 size and against step latency, the Pareto front joined, the chosen
    trial starred, trials over budget hollow."""
    plt = _plt()
    key = f"int8_{metric}"
    scored = [r for r in rows if r.get(key) is not None and r.get("int8_kb") is not None]
    higher = metric == "accuracy"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), squeeze=False)
    for ax, (x, label) in zip(
        axes[0], (("int8_kb", "int8 step model (KB)"), ("step_us", "µs per step (this machine)"))
    ):
        ok = [r for r in scored if r["status"] == "ok"]
        over = [r for r in scored if r["status"] != "ok"]
        ax.scatter([r[x] for r in ok], [r[key] for r in ok], color="tab:blue", label="trial")
        if over:
            ax.scatter(
                [r[x] for r in over],
                [r[key] for r in over],
                facecolors="none",
                edgecolors="tab:gray",
                label="over budget",
            )
        if ok:
            front = pareto_front([r[x] for r in ok], [r[key] for r in ok], higher)
            ax.plot(
                [ok[i][x] for i in front],
                [ok[i][key] for i in front],
                "-",
                color="tab:orange",
                drawstyle="steps-post",
                label="Pareto front",
            )
        for r in scored:
            ax.annotate(r["trial"], (r[x], r[key]), fontsize=7, xytext=(3, 3), textcoords="offset points")
            if r["trial"] == best:
                ax.scatter([r[x]], [r[key]], marker="*", s=220, color="tab:red", zorder=3, label="chosen")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(f"int8 {metric} (cross-validated)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("edgelstm tune: trials")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
