"""`edgelstm tune`: a budgeted search over architecture, size and recipe, scored as the device will run it.

Each trial is cross-validated by subject (else recording), and every fold's model is quantized to the full-int8
step model and scored through the device runner on the fold it never saw: a candidate that wins in float but loses
in int8, or does not fit the target, is not chosen. The search is seeded random order over SPACE with `train`'s
default first (a rocket model where train makes one), so the winner is never worse than it under the same protocol.
Budgets that the shape alone decides (parameters; a size bound of one byte per parameter) skip a candidate before it
is trained; size, step latency (this machine's runner) and the target's op rules are checked on the file each trial
makes.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path

import numpy as np

from ..capabilities import shape_why_not, table_arch, why_not
from ..data.dataset import Dataset, Windows
from ..errors import InputError
from ..evaluate.metrics import score
from ..models.config import model_name
from ..models.cost import macs_per_step, param_count, rocket_macs, rocket_params
from ..models.modeldir import KERAS_FILE, ROCKET_FILE, check_replaceable
from ..runtime.rocket import n_shares
from .crossval import fold_datasets, unit_keys
from .fit import PLAIN_RECIPE, Progress, TrainOptions
from .fitted import fit_either

# What is searched, as data. BiLSTM is left out: it cannot stream (a window per answer); peepholes and wider
# convolutions won nothing on bench/accuracy.py's sets (docs/accuracy.md).
ARCHS = (("lstm", ()), ("gru", ()), ("lstm", ((5, 32),)), ("gru", ((5, 32),)))
# rocket models (train/rocket.py) by their size, about this many shares, where `train` makes one by default
# (fit.default_arch: windows or sequences given as such, or long series; not a continuous recording cut into short
# windows, where its shares would count over the whole stream). Scored like the others: int8, through the runner.
ROCKET_SHARES = (1000, 4000, 10000)
UNITS = (16, 32, 64, 128)
LAYERS = (1, 2)
# the head: last state, the running max over the window (models/build.py TimeMax), or that and the conv front-end's
# running max (a front-end's only: capabilities.RULES refuses it without one)
POOLS = ("last", "max", "maxconv")
# Recipes: overrides of train's options. "default": train's own (fit.CLASSIFY_RECIPE for a classifier); "plain":
# constant learning rate, no weight decay or label smoothing (train's default before it); "dropout": the default
# with dropout 0.2, which helped on real data but cost int8 agreement on the sample data (docs/accuracy.md): tune
# scores it in int8, so it is chosen only where it holds up there; "quantile": the default with every channel
# through its rank-Gaussian map (data/normalize.py INPUT_MAPS), which won on the power and current sets and lost on
# the IMU one (docs/accuracy.md); "long": trained to the end of a schedule of about fit.STEP_BUDGET steps, without
# early stopping. Against the default (bench/accuracy.py, 3 seeds, int8): PLAID 0.645 -> 0.688, ACSF1 0.593 -> 0.640,
# BasicMotions 0.967 -> 0.975, JapaneseVowels 0.969 -> 0.959; but ACSF1's float model reached 0.733 and lost 9
# points in int8, so it is searched in int8 rather than made the default for short windows (long series, over
# fit.LONG_WINDOW samples, train so by default: fit.LONG_SERIES_RECIPE). A regression or forecast keeps its
# linear inputs and label-free loss.
RECIPES = {
    "default": {},
    "plain": PLAIN_RECIPE,
    "dropout": {"dropout": 0.2},
    "quantile": {"input_map": "quantile"},
    "long": {"epochs": "auto", "patience": 0},
}
DEFAULT = ("lstm", (), 64, 1, "default")  # train's defaults: always the first trial
CALIBRATION_WINDOWS = 200
BENCH_STEPS = 300


@dataclass(frozen=True)
class Candidate:
    arch: str
    conv: tuple
    units: int
    layers: int
    recipe: str
    pool: str = "last"

    @property
    def name(self) -> str:
        if self.arch == "rocket":
            return f"rocket{self.units}"
        recipe = "" if self.recipe == "default" else f"+{self.recipe}"
        return model_name(self.arch, self.units, self.layers, self.conv, self.pool) + recipe

    def options(self, base: TrainOptions, rocket: TrainOptions | None = None) -> TrainOptions:
        """This candidate's options: over `base` (train's, resolved for a recurrent model), or for a rocket model
        over `rocket` (train's, resolved for one)."""
        if self.arch == "rocket":
            return replace(rocket, shares=self.units)
        over = dict(RECIPES[self.recipe])
        if base.task != "classify":
            over.pop("label_smoothing", None)
            over.pop("input_map", None)
        conv = [list(c) for c in self.conv]
        return replace(base, arch=self.arch, units=self.units, layers=self.layers, conv=conv, pool=self.pool, **over)


@dataclass
class Budget:
    max_params: int | None = None
    max_kb: float | None = None
    max_step_us: float | None = None
    target: object | None = None  # targets.profile.Target

    def before_training(self, c: Candidate, p: int) -> str | None:
        """Why the candidate of p parameters cannot fit, from its shape alone (None: train it)."""
        if self.target is not None:
            fmt = "rocket" if c.arch == "rocket" else "tflite"
            if fmt not in self.target.formats:
                return f"{self.target.name}: it runs {', '.join(self.target.formats)} models, not {fmt}"
            why = why_not(
                table_arch(c.arch, c.layers, False, bool(c.conv)), "step", fmt, "int8", self.target.engine(fmt)
            )
            if why:
                return f"{self.target.name}: {why}"
        if self.max_params is not None and p > self.max_params:
            return f"{p} parameters > {self.max_params}"
        if self.max_kb is not None and p / 1024 > self.max_kb:  # an int8 weight is at least a byte
            return f"at least {p / 1024:.1f} KB int8 > {self.max_kb:g} KB"
        return None

    def after_export(self, path: Path, step_us: float) -> list[str]:
        """Every way the trial's int8 step file breaks a budget or the target."""
        out = []
        kb = path.stat().st_size / 1024
        if self.max_kb is not None and kb > self.max_kb:
            out.append(f"{kb:.1f} KB > {self.max_kb:g} KB")
        if self.max_step_us is not None and step_us > self.max_step_us:
            out.append(f"{step_us:.1f} µs per step > {self.max_step_us:g} µs")
        if self.target is not None:
            from ..targets.check import check_model

            out += check_model(path, self.target)
        return out


@dataclass
class Trial:
    candidate: Candidate
    params: int
    macs: int
    status: str = "ok"  # ok | over budget | failed | skipped
    why: str = ""
    kb: float | None = None
    step_us: float | None = None
    float_scores: list[float] = field(default_factory=list)
    int8_scores: list[float] = field(default_factory=list)
    int8_f1: list[float] = field(default_factory=list)
    seconds: float = 0.0
    oof: tuple | None = None  # (pooled fold windows, int8 outputs) for the winner's metrics

    def row(self, metric: str) -> dict:
        c = self.candidate
        mean = lambda v: float(np.mean(v)) if v else None  # noqa: E731
        sd = lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else None  # noqa: E731
        return {
            "trial": c.name,
            "arch": c.arch,
            "conv": " ".join(f"{k}:{f}" for k, f in c.conv),
            "units": c.units,
            "layers": c.layers,
            "recipe": c.recipe,
            "pool": c.pool,
            "params": self.params,
            "macs_per_step": self.macs,
            "int8_kb": None if self.kb is None else round(self.kb, 2),
            "step_us": None if self.step_us is None else round(self.step_us, 2),
            f"float_{metric}": mean(self.float_scores),
            f"int8_{metric}": mean(self.int8_scores),
            f"int8_{metric}_sd": sd(self.int8_scores),
            **({"int8_macro_f1": mean(self.int8_f1)} if metric == "accuracy" else {}),
            "status": self.status,
            "why": self.why,
            "seconds": round(self.seconds, 1),
        }


def candidates(seed: int, first: Candidate | None = None, rocket: bool = False) -> list[Candidate]:
    """Every candidate of SPACE (and the rocket models, where the data take them): `first` (train's defaults)
    first, the rest in a seeded random order."""
    every = [
        Candidate(a, conv, u, n, r, p)
        for (a, conv), u, n, r, p in product(ARCHS, UNITS, LAYERS, RECIPES, POOLS)
        if shape_why_not(a, n, False, conv, p) is None  # what ModelConfig would refuse
    ]
    every += [Candidate("rocket", (), n, 1, "default") for n in ROCKET_SHARES] if rocket else []
    first = first or Candidate(*DEFAULT)
    rest = [c for c in every if c != first]
    order = np.random.default_rng(seed).permutation(len(rest))
    return [first] + [rest[i] for i in order]


def tune(
    ds: Dataset,
    base: TrainOptions,
    out: str | Path,
    trials: int = 8,
    folds: int = 3,
    budget: Budget | None = None,
    progress: Progress | None = None,
    test: Dataset | None = None,
    overwrite: bool = False,
) -> dict:
    """Run the search, train the winner on all of `ds`, write its model directory (with the int8 step model, the
    trials as tune.csv and tune.json, and tune.png); returns the final model's metrics."""
    say = progress or (lambda _m: None)
    budget = budget or Budget()
    if trials < 1:
        raise InputError("--trials must be at least 1")
    if folds < 2:
        raise InputError("--folds must be at least 2")
    if base.split_by == "time":
        raise InputError("tune cross-validates by subject or recording; it does not go with --split-by time")
    rocket = rocket_options(ds, base, test)
    base.resolve(ds, test)
    base.check()
    check_replaceable(out, overwrite)
    metric = "accuracy" if base.task == "classify" else "rmse"
    unit, parts = fold_datasets(ds, folds, base.seed, base.task)
    n_units = len(set(unit_keys(ds)[1]))
    say(f"tune: up to {trials} trials, each {folds} folds by {unit} ({n_units} {unit}s), scored on the int8 step model")
    n_in = ds.n_features * base.frame
    n_out = {"classify": len(ds.labels), "regress": len(ds.targets)}.get(
        base.task, base.horizon * (len(ds.targets) or ds.n_features)
    )
    done: list[Trial] = []
    # train's defaults for this data (the recipe of long series or variable-length sequences adds a conv front-end
    # and a pooled head)
    first = Candidate("lstm", tuple(tuple(k) for k in base.conv), 64, 1, "default", base.pool)
    if rocket is not None:
        from .rocket import SHARES

        first = Candidate("rocket", (), SHARES, 1, "default")
    for c in candidates(base.seed, first, rocket is not None):
        if sum(t.status != "skipped" for t in done) >= trials:
            break
        if c.arch == "rocket":
            n = n_shares(rocket.window, ds.n_features, c.units)
            t = Trial(c, rocket_params(n, n_out), rocket_macs(rocket.window, ds.n_features, n_out, n))
        else:
            conv = [list(k) for k in c.conv]
            t = Trial(
                c,
                param_count(c.arch, c.units, c.layers, n_in, n_out, conv=conv, pool=c.pool),
                macs_per_step(c.arch, c.units, c.layers, n_in, n_out, conv=conv, pool=c.pool),
            )
        why = budget.before_training(c, t.params)
        if why:
            t.status, t.why = "skipped", why
            done.append(t)
            continue
        k = sum(x.status != "skipped" for x in done) + 1
        say(f"trial {k}/{trials}: {c.name} ({t.params} parameters)")
        t0 = time.perf_counter()
        try:
            run_trial(t, c.options(base, rocket), parts, unit, budget, say)
        except InputError as ex:  # one trial the converter or the data refuse: said, and the search goes on
            t.status, t.why = "failed", str(ex)
        t.seconds = time.perf_counter() - t0
        say(f"trial {k}/{trials}: {c.name}: {describe(t, metric)}")
        done.append(t)
    ranked = [t for t in done if t.status == "ok"]
    if not ranked:
        raise InputError(no_fit(done))
    sign = 1 if metric == "accuracy" else -1
    best = max(ranked, key=lambda t: (sign * np.mean(t.int8_scores), -t.kb))
    say(f"best: {best.candidate.name}; training it on all of the data")
    opts = best.candidate.options(base, rocket)
    return final_model(ds, best, done, opts, out, metric, unit, folds, say, test, overwrite)


def rocket_options(ds: Dataset, base: TrainOptions, test: Dataset | None) -> TrainOptions | None:
    """train's options for a rocket model on these data, where train makes one by default (else None), from the
    options before they are resolved for a recurrent model."""
    rocket = replace(base, arch=None)
    rocket.resolve(ds, test)
    if rocket.arch != "rocket":
        return None
    rocket.check()
    return rocket


def no_fit(done: list[Trial]) -> str:
    """Why nothing could be chosen, one line: how many candidates each way failed, with the closest of each."""
    parts = []
    for status in ("skipped", "over budget", "failed"):
        ts = sorted((t for t in done if t.status == status), key=lambda t: t.params)
        if ts:
            parts.append(f"{len(ts)} {status} (smallest: {ts[0].candidate.name}, {ts[0].why})")
    return "no trial fits the budget: " + "; ".join(parts)


def run_trial(t: Trial, opts: TrainOptions, parts, unit: str, budget: Budget, say: Progress) -> None:
    """Fit, quantize and score one candidate on every fold (t filled in place)."""
    fold_opts = replace(opts, split_by=unit)
    windows, outputs = [], []
    for f, (rest, held) in enumerate(parts, 1):
        with tempfile.TemporaryDirectory(prefix="edgelstm-tune-") as tmp:
            cfg, prep, float_out, path = fold_int8(fold_opts, rest, held, Path(tmp))
            t.float_scores.append(score(cfg, prep.test, float_out)[t_metric(cfg)])
            out = int8_outputs(path, prep.test.X)
            m = score(cfg, prep.test, out)
            t.int8_scores.append(m[t_metric(cfg)])
            if "macro_f1" in m:
                t.int8_f1.append(m["macro_f1"])
            windows.append(prep.test)
            outputs.append(out)
            if f == 1:  # size, latency and the target's rules: the same for every fold
                t.kb = path.stat().st_size / 1024
                t.step_us = step_latency(path)
                broken = budget.after_export(path, t.step_us)
                if broken:
                    t.status, t.why = "over budget", "; ".join(broken[:3])
                    return
        say(f"  fold {f}/{len(parts)}: int8 {t_metric(cfg)} {t.int8_scores[-1]:.3f}")
    t.oof = (
        Windows(
            np.concatenate([w.X for w in windows]),
            np.concatenate([w.y for w in windows]),
            np.concatenate([w.groups for w in windows]),
        ),
        np.concatenate(outputs),
    )


def fold_int8(opts: TrainOptions, rest: Dataset, held: Dataset, d: Path):
    """One fold's model, fitted on `rest`, with its int8 step file written under d: (cfg, prep, float outputs on
    the held-out fold, the file)."""
    m = fit_either(rest, opts, None, None, held)
    m.cfg.save(d)
    if opts.arch == "rocket":
        from . import rocket

        rocket.write_model(d / ROCKET_FILE, m.cfg, m.model)
        path = rocket.quantize_rocket(d, m.cfg, "int8", d)
    else:
        from ..export.quantize import quantize

        m.model.save(d / KERAS_FILE)
        calib = d / "calibration.npz"
        write_calibration(calib, m.prep.train, m.cfg.task == "classify", opts.seed)
        (path,) = quantize(d, "int8", calibration=calib, kind="step")
    return m.cfg, m.prep, m.predict(m.prep.test.X), path


def t_metric(cfg) -> str:
    return "accuracy" if cfg.task == "classify" else "rmse"


def write_calibration(path: Path, w: Windows, classify: bool, seed: int) -> None:
    """The fold's own training windows as a calibration NPZ: calibrating on the whole file would let the held-out
    fold set the ranges."""
    from ..export.calibrate import pick_windows

    idx = pick_windows(len(w), CALIBRATION_WINDOWS, seed, w.y if classify else None)
    np.savez(path, X=w.X[idx].astype(np.float32))


def int8_outputs(path: Path, X: np.ndarray) -> np.ndarray:
    """The device runner's outputs on raw windows (what `evaluate` and the device compute)."""
    from ..evaluate.predict import FilePredictor

    return FilePredictor(path).predict(X)


def step_latency(path: Path) -> float:
    """Median µs per step of the runner on this machine (a few hundred steps: a ranking, not a benchmark)."""
    from ..runtime.bench import bench

    return float(bench(path, count=BENCH_STEPS, warmup=30)["runner"]["median_us"])


def describe(t: Trial, metric: str) -> str:
    if t.status in ("failed", "skipped"):
        return f"{t.status}: {t.why}"
    head = f"int8 {metric} {np.mean(t.int8_scores):.3f}"
    if len(t.int8_scores) > 1:
        head += f" ± {np.std(t.int8_scores, ddof=1):.3f}"
    head += f", {t.kb:.1f} KB, {t.step_us:.1f} µs/step"
    return head if t.status == "ok" else f"{head}; over budget: {t.why}"


def final_model(ds, best: Trial, done: list[Trial], opts, out, metric, unit, folds, say, test, overwrite) -> dict:
    """The winner trained on all of DATA, its trials table and plot beside it, then its int8 step model."""
    from .. import plots

    m = fit_either(ds, opts, say, None, test, hold_out_test=False)
    cfg = m.cfg
    rows = [t.row(metric) for t in done]
    summary = {
        "metric": f"int8 {metric}, mean over {folds} folds by {unit} (step model, device runner)",
        "best": best.candidate.name,
        "trials": rows,
    }
    tried = sum(t.status != "skipped" for t in done)
    cfg.training["tune"] = {"best": best.candidate.name, "trials": tried, "folds": folds, "by": unit}
    oof_metrics = None
    if test is None and best.oof is not None:
        oof_metrics = score(cfg, *best.oof)

    def extra(tmp: Path) -> None:
        (tmp / "tune.json").write_text(json.dumps(summary, indent=2) + "\n")
        with open(tmp / "tune.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        plots.pareto(rows, metric, tmp / "tune.png", best.candidate.name)

    metrics = m.write_dir(out, {"tune": summary}, extra, oof_metrics, overwrite)
    from ..export.quantize import quantize

    say("quantizing the winner: the int8 step model")
    (path,) = quantize(out, "int8", kind="step", fmt="rocket" if opts.arch == "rocket" else "tflite")
    metrics["int8_step"] = str(path)
    return metrics
