"""`edgelstm distill`: train a small (causal) student on a frozen teacher's outputs, and show what it bought.

Classification: the student learns the teacher's softened logits (temperature T, KL divergence × T², Hinton et al.
2015) mixed with the hard labels by `alpha`. Regression and forecasting: the teacher's outputs are soft targets
(MSE) mixed with the true targets. The teacher is frozen: it runs in inference mode once over every split (and over
the augmented training windows, drawn once as in `train`), which is what a Distiller calling it per batch computes
too, at a fraction of the cost.

The same student architecture is also trained WITHOUT the teacher (same data, split, epochs, seed, initial
weights) so the report shows whether the teacher helped. The student is saved as a plain model directory.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..data.dataset import ColumnSpec, Dataset, content_sha256
from ..data.prepare import (
    Prepared,
    data_record,
    input_map_of,
    model_inputs,
    model_targets,
    outputs_to_units,
    pad_to,
    prepare,
)
from ..errors import InputError
from ..evaluate.metrics import score
from ..models.config import ARCHS, ModelConfig, model_name, parse_conv
from ..models.cost import config_macs, streams
from ..models.modeldir import check_replaceable, load_config
from .fit import FitOptions, Progress, TrainOptions

REPORT_JSON = "distill_report.json"
REPORT_PNG = "distill_report.png"

_STUDENT = re.compile(r"^(?P<arch>[a-z]+):(?P<units>\d+)(?:x(?P<layers>\d+))?$")


@dataclass(frozen=True)
class StudentSpec:
    arch: str
    units: int
    layers: int = 1
    conv: tuple = ()  # a causal conv front-end, ((kernel, filters), ...): a CRNN student
    pool: str = "last"  # what its head sees (models/config.py POOLS)

    def __str__(self) -> str:
        return model_name(self.arch, self.units, self.layers, self.conv, self.pool, sep=":")


def parse_student(text: str, conv: str | None = None, pool: str = "last") -> StudentSpec:
    """ "gru:16" → GRU, 16 units, 1 layer; "lstm:32x2" → two stacked 32-unit LSTM layers; conv "5:16" and pool
    "maxconv" put train's front-end and head on it (a CRNN student). Nothing comes from train's recipes: the
    student is what is asked for, so its size against the teacher's is the user's choice."""
    m = _STUDENT.match(text.strip().lower())
    if not m or m["arch"] not in ARCHS:
        raise InputError(
            f"--student {text!r}: expected ARCH:UNITS[xLAYERS] with ARCH one of {', '.join(ARCHS)} "
            "(e.g. gru:16, lstm:32x2)"
        )
    front = tuple(tuple(k) for k in parse_conv(conv))
    spec = StudentSpec(m["arch"], int(m["units"]), int(m["layers"] or 1), front, pool)
    if spec.units < 1 or spec.layers < 1:
        raise InputError(f"--student {text!r}: units and layers must be at least 1")
    if spec.arch == "rocket" and (m["layers"] or front or pool != "last"):
        raise InputError(
            f"--student {text!r}: a rocket student is rocket:SHARES, without layers, --conv or --pool (it has none)"
        )
    return spec


@dataclass
class DistillOptions(FitOptions):
    """The student's fit options (the same as `train`'s) and the distillation's own."""

    temperature: float = 4.0
    alpha: float = 0.5  # weight of the hard-label loss; 1 - alpha goes to the teacher's soft targets
    measure_int8: bool = True  # quantize each streamable model's step model to int8: its size and step latency

    def check(self) -> None:
        if not self.temperature > 0:
            raise InputError("--temperature must be greater than 0")
        if not 0 <= self.alpha <= 1:
            raise InputError("--alpha must be in [0, 1]")
        if self.mixup:
            raise InputError("distill does not take --mixup: the student learns the teacher's outputs on real windows")
        self.check_fit()


def column_spec_for(
    spec: ColumnSpec, teacher: ModelConfig, task_given: bool, where: str | Path, given: frozenset[str] = frozenset()
) -> ColumnSpec:
    """Read DATA the way the teacher was trained: its task, targets, label and recording columns and NaN policy
    (config.training["columns"]), except what the user named (`given`: label_col, group_col, subject_col, nan).

    A --task other than the teacher's is refused here, before reading DATA the wrong way fails less clearly.
    """
    task = spec.task if task_given else teacher.task
    check_task(teacher, task, where)
    targets = tuple(spec.target_cols)
    if not targets and task != "classify" and task == teacher.task:
        targets = tuple(teacher.targets)
    trained = teacher.training.get("columns") or {}
    kept = {k: trained[k] for k in ("label_col", "group_col", "subject_col", "nan") if k in trained and k not in given}
    return replace(spec, task=task, target_cols=targets, **kept)


def check_task(teacher: ModelConfig, task: str, where: str | Path) -> None:
    if teacher.task != task:
        raise InputError(f"teacher {where} is a {teacher.task} model but the data is read for --task {task}")


def check_teacher(teacher: ModelConfig, ds: Dataset, task: str, where: str | Path, student: StudentSpec) -> None:
    """One line naming the first way the teacher does not fit the data or the student: task, kind, channels,
    labels, targets, window."""
    t = f"teacher {where}"
    kind = student.arch
    if teacher.arch == "rocket" and kind != "rocket":
        raise InputError(
            f"{t} is a rocket model: its ridge head scores fixed features, with no logits over time for a recurrent "
            "student to learn; distill it into a smaller rocket model (--student rocket:SHARES), or train the "
            "teacher with --arch lstm|gru|bilstm"
        )
    if kind == "rocket" and teacher.arch != "rocket":
        raise InputError(
            f"--student {student}: a rocket student learns a rocket teacher's scores on the same shares' kind; "
            f"{t} is {teacher.arch}: train the teacher with --arch rocket, or choose a recurrent student"
        )
    check_task(teacher, task, where)
    if ds.n_features != teacher.n_features:
        raise InputError(
            f"{t} expects {teacher.n_features} channels ({', '.join(teacher.channels)}) but {ds.source} has "
            f"{ds.n_features} ({', '.join(ds.channels)})"
        )
    if teacher.channels and list(ds.channels) != list(teacher.channels):
        raise InputError(
            f"{t} channels ({', '.join(teacher.channels)}) differ from {ds.source}'s ({', '.join(ds.channels)})"
        )
    if task == "classify" and list(ds.labels) != list(teacher.labels):
        raise InputError(
            f"{t} labels ({', '.join(teacher.labels)}) do not match {ds.source}'s ({', '.join(ds.labels)})"
        )
    if task != "classify" and list(ds.targets) != list(teacher.targets):
        raise InputError(
            f"{t} targets ({', '.join(teacher.targets)}) do not match {ds.source}'s ({', '.join(ds.targets)})"
        )
    if ds.windows is not None:
        try:  # as train fits them: shorter sequences get more padding, a frame model drops the oldest T mod frame
            pad_to(ds.windows.X, teacher.window, str(ds.source), teacher.frame)
        except InputError:
            raise InputError(
                f"{t} window is {teacher.window} samples but {ds.source} holds windows of {ds.windows.X.shape[1]}"
            ) from None
    need = teacher.window + (teacher.horizon if task == "forecast" else 0)
    longest = max((len(r.x) for r in ds.recordings), default=need)
    if longest < need:  # the window is the teacher's, so `train`'s hint (a smaller --window) does not apply
        raise InputError(f"{t} needs {need} samples per window but the longest recording in {ds.source} has {longest}")


# ------------------------------------------------------------------------------------------------- losses


def classification_loss(temperature: float, alpha: float):
    """y_true = [hard label, teacher logits...]; y_pred = student logits."""
    from .._deps import tensorflow

    tf = tensorflow()
    T = float(temperature)

    def distill_loss(y_true, logits):
        hard = tf.cast(y_true[:, 0], tf.int32)
        t = y_true[:, 1:] / T
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=hard, logits=logits)
        kl = tf.reduce_sum(tf.nn.softmax(t) * (tf.nn.log_softmax(t) - tf.nn.log_softmax(logits / T)), axis=-1)
        return alpha * ce + (1 - alpha) * T * T * kl

    def accuracy(y_true, logits):
        hit = tf.equal(tf.argmax(logits, axis=-1), tf.cast(y_true[:, 0], tf.int64))
        return tf.cast(hit, tf.float32)

    return distill_loss, [accuracy]


def regression_loss(n_outputs: int, alpha: float):
    """y_true = [true targets..., teacher outputs...] (normalized units); y_pred = student outputs."""
    from .._deps import tensorflow

    tf = tensorflow()
    k = n_outputs

    def distill_loss(y_true, y_pred):
        hard = tf.reduce_mean(tf.square(y_pred - y_true[:, :k]), axis=-1)
        soft = tf.reduce_mean(tf.square(y_pred - y_true[:, k:]), axis=-1)
        return alpha * hard + (1 - alpha) * soft

    def mae(y_true, y_pred):
        return tf.reduce_mean(tf.abs(y_pred - y_true[:, :k]), axis=-1)

    return distill_loss, [mae]


# ------------------------------------------------------------------------------------------------ distill


def teacher_soft_targets(teacher, tcfg: ModelConfig, cfg: ModelConfig, X: np.ndarray) -> np.ndarray:
    """The frozen teacher's logits (classification) or outputs in the student's normalized units."""
    from .._deps import keras

    if tcfg.task == "classify":
        logits = keras().Model(teacher.input, teacher.get_layer("logits").output)
        return logits.predict(model_inputs(tcfg, X), batch_size=256, verbose=0)
    out = teacher.predict(model_inputs(tcfg, X), batch_size=256, verbose=0)
    return model_targets(cfg, outputs_to_units(tcfg, out))


def teacher_sets(tcfg: ModelConfig) -> tuple[Dataset | None, Dataset | None]:
    """The validation and test files the teacher was trained with (`train --val/--test`), read like DATA: the
    student then learns from the same training data and is scored on the same test file as its teacher (without
    them it re-split DATA 70/15/15 and trained on less than the teacher saw)."""
    from ..data.dataset import load
    from ..data.prepare import training_columns

    spec = training_columns(tcfg)
    out = []
    for key in ("val_data", "test_data"):
        path = tcfg.training.get(key)
        if path and not Path(path).exists():
            raise InputError(f"the teacher was trained with {path} (train --{key[:-5]}), which is not there")
        out.append(load(path, spec) if path else None)
    return out[0], out[1]


def split_matches(ds: Dataset, prep: Prepared, tcfg: ModelConfig, say: Progress) -> bool:
    """Whether the student trains on the teacher's training windows (so no test window taught it): the same file
    (its SHA-256 in the teacher's config.json) and the same normalization statistics; a warning when not."""
    mean, std = prep.norm.to_lists()
    same = bool(
        len(mean) == len(tcfg.norm_mean)
        and np.allclose(mean, tcfg.norm_mean, rtol=1e-5, atol=1e-6)
        and np.allclose(std, tcfg.norm_std, rtol=1e-5, atol=1e-6)
    )
    recorded = tcfg.training.get("data_sha256")
    if recorded and content_sha256(ds.source) != recorded:
        say(
            "warning: this data is not the file the teacher was trained on (its SHA-256 differs from the teacher's "
            "config.json): the teacher may have seen windows that are held out here"
        )
        return False
    if not same:
        say(
            "warning: this data's training split differs from the teacher's (other normalization statistics): "
            "the teacher may have seen windows that are held out here"
        )
    return same


def _headline(task: str, test: dict) -> dict:
    keys = ("accuracy", "macro_f1") if task == "classify" else ("rmse", "mae")
    return {k: test[k] for k in keys}


def _name(cfg: ModelConfig) -> str:
    """The model as --student is written, with its front-end and head."""
    return model_name(cfg.arch, cfg.units, cfg.layers, cfg.conv, cfg.pool, sep=":")


def _entry(name: str, cfg: ModelConfig, params: int, test: dict, epochs_run: int | None, path: str | None) -> dict:
    return {
        "role": name,
        "model": _name(cfg),
        "path": path,
        "params": params,
        "macs_per_step": config_macs(cfg),
        "streams": streams(cfg.arch),
        "test": _headline(cfg.task, test),
        "epochs_run": epochs_run,
        "int8_bytes": None,  # filled by measure_int8()
        "step_latency_us": None,
        "int8_note": None,
    }


def measure_int8(model_dir: str | Path, cfg: ModelConfig, say: Progress) -> dict:
    """int8 step model size and median runner latency per step on this machine, or why there is none."""
    import tempfile

    from ..errors import EdgeLSTMError
    from ..export.quantize import quantize
    from ..models.step import steppable
    from ..runtime.bench import bench

    rocket = cfg.arch == "rocket"  # its .rocket file is its step model
    if not rocket and not steppable(cfg):
        return {"int8_note": "n/a (no step model: stacked BiLSTM)"}
    with tempfile.TemporaryDirectory(prefix="edgelstm-distill-int8-") as tmp:
        try:
            fmt = "rocket" if rocket else "tflite"
            (path,) = quantize(model_dir, "int8", kind="step", fmt=fmt, out=tmp, progress=say)
            latency = bench(path, count=2000, warmup=100)["runner"]["median_us"]
        except EdgeLSTMError as ex:
            return {"int8_note": f"n/a ({ex})"}
        return {"int8_bytes": Path(path).stat().st_size, "step_latency_us": latency}


def distill(
    ds: Dataset,
    teacher_dir: str | Path,
    student: StudentSpec,
    out: str | Path,
    opts: DistillOptions | None = None,
    task: str | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> dict:
    """Distill the teacher in `teacher_dir` into `student`, write the student's model directory `out` (replacing
    one only if `overwrite`) with distill_report.json and distill_report.png; returns the report."""
    opts = opts or DistillOptions()
    opts.check()
    check_replaceable(out, overwrite)
    say = progress or (lambda _msg: None)
    tcfg = load_config(teacher_dir)
    task = task or tcfg.task
    check_teacher(tcfg, ds, task, teacher_dir, student)
    if student.arch == "rocket":  # numpy only: no TensorFlow
        return _distill_rocket(ds, tcfg, teacher_dir, student, Path(out), opts, say, overwrite)

    from .._deps import keras, tensorflow

    keras()
    # several small models each predict a few times: TensorFlow's retracing warning would only be noise here
    tf_logger = tensorflow().get_logger()
    level = tf_logger.level
    tf_logger.setLevel("ERROR")
    try:
        return _distill(ds, tcfg, teacher_dir, student, Path(out), opts, task, say, overwrite)
    finally:
        tf_logger.setLevel(level)


def _distill(
    ds: Dataset,
    tcfg: ModelConfig,
    teacher_dir: str | Path,
    student: StudentSpec,
    out: Path,
    opts: DistillOptions,
    task: str,
    say: Progress,
    overwrite: bool = False,
) -> dict:
    from .._deps import keras as _keras
    from ..models.build import build_model, count_params
    from ..models.modeldir import load_keras
    from .fit import augmented, fit, make_config, predict, write_model_dir

    keras = _keras()
    seed = int(tcfg.training.get("seed", 0))
    split_by = tcfg.training.get("split_by", "recording")
    val, test = teacher_sets(tcfg)
    prep = prepare(
        ds,
        tcfg.window,
        tcfg.stride,
        task,
        tcfg.horizon,
        seed,
        val,
        test,
        split_by=split_by,
        frame=tcfg.frame,
        input_map=input_map_of(tcfg),
    )
    same_split = split_matches(ds, prep, tcfg, say)
    _, teacher = load_keras(teacher_dir)
    teacher.trainable = False
    topts = TrainOptions(
        arch=student.arch,
        task=task,
        units=student.units,
        layers=student.layers,
        window=tcfg.window,
        stride=tcfg.stride,
        frame=tcfg.frame,  # the teacher's frames: the same windows, the student's steps
        input_map=input_map_of(tcfg),  # the teacher's inputs
        conv=[list(k) for k in student.conv],  # the student is the --student spec, nothing added by a recipe
        pool=student.pool,
        horizon=tcfg.horizon,
        seed=seed,
        split_by=split_by,
        **opts.fit_options(),
    )
    topts.check()
    cfg = make_config(ds, prep, topts)
    cfg.training = {
        **asdict(topts),
        **data_record(ds, val, test),
        "columns": ds.columns,
        "distill": {"teacher": str(teacher_dir), "temperature": opts.temperature, "alpha": opts.alpha},
    }

    teacher_test = score(tcfg, prep.test, predict(teacher, tcfg, prep.test.X))
    t_params = count_params(teacher)
    say(
        f"teacher: {tcfg.arch} {tcfg.units}x{tcfg.layers}, {t_params} parameters, held-out "
        + ", ".join(f"{k} {v:.4g}" for k, v in _headline(task, teacher_test).items())
    )
    # student and baseline train on the same augmented windows, the student against the teacher's outputs on them
    fprep = augmented(prep, topts, say, cfg.channels)
    soft_train, soft_val = (teacher_soft_targets(teacher, tcfg, cfg, w.X) for w in (fprep.train, prep.val))

    def hard(y: np.ndarray) -> np.ndarray:
        return y[:, None].astype(np.float32) if task == "classify" else model_targets(cfg, y).astype(np.float32)

    targets = tuple(
        np.concatenate([hard(w.y), s], axis=1) for w, s in ((fprep.train, soft_train), (prep.val, soft_val))
    )
    if task == "classify":
        loss, metrics = classification_loss(opts.temperature, opts.alpha)
    else:
        loss, metrics = regression_loss(cfg.n_outputs, opts.alpha)

    keras.utils.set_random_seed(seed)
    model = build_model(cfg)
    s_params = count_params(model)
    say(f"student: {_name(cfg)}, {s_params} parameters ({t_params / s_params:.1f}x fewer than the teacher)")
    if not streams(cfg.arch):
        say("note: a BiLSTM student cannot stream (it needs the whole window); choose lstm or gru for real time")
    # classification trains the logits (shared weights), so the saved student stays a plain model with its softmax
    trained = keras.Model(model.input, model.get_layer("logits").output) if task == "classify" else model
    history = fit(
        trained, cfg, fprep, topts, lambda m: say(f"distill {m}"), loss=loss, targets=targets, metrics=metrics
    )
    student_test = score(cfg, prep.test, predict(model, cfg, prep.test.X))

    keras.utils.set_random_seed(seed)  # the same initial weights and shuffling, without the teacher
    base = build_model(cfg)
    base_history = fit(base, cfg, fprep, topts, lambda m: say(f"baseline {m}"))
    base_test = score(cfg, prep.test, predict(base, cfg, prep.test.X))

    report = {
        "task": task,
        "data": ds.source,
        "split_matches_teacher": same_split,
        "temperature": opts.temperature,
        "alpha": opts.alpha,
        "seed": seed,
        "max_epochs": cfg.training["epochs"],
        "models": [
            _entry("teacher", tcfg, t_params, teacher_test, None, str(teacher_dir)),
            _entry("student", cfg, s_params, student_test, len(history["loss"]), str(out)),
            _entry("baseline", cfg, s_params, base_test, len(base_history["loss"]), None),
        ],
        "param_ratio": t_params / s_params,
    }
    report["student_vs_teacher"] = _relative(task, teacher_test, student_test)
    report["baseline_vs_teacher"] = _relative(task, teacher_test, base_test)

    write_model_dir(
        out,
        model,
        cfg,
        prep,
        history,
        extra_metrics={"distilled_from": str(teacher_dir)},
        extra_files=lambda folder: write_report(report, folder),
        overwrite=overwrite,
    )
    if opts.measure_int8:
        add_int8(report, teacher_dir, tcfg, out, cfg, say)
    return report


def write_report(report: dict, folder: Path) -> None:
    from .. import plots

    (folder / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    plots.distill_report(report, folder / REPORT_PNG)


def add_int8(report: dict, teacher_dir: str | Path, tcfg: ModelConfig, out: Path, cfg: ModelConfig, say) -> None:
    """Each model's int8 step-model size and step latency, into the report and its files in `out`."""
    teacher_entry, student_entry, base_entry = report["models"]
    say("int8: quantizing the step models for size and step latency")
    teacher_entry.update(measure_int8(teacher_dir, tcfg, say))
    student_entry.update(measure_int8(out, cfg, say))
    # the baseline has the student's architecture, so the same int8 size and step latency
    base_entry.update({k: student_entry[k] for k in ("int8_bytes", "step_latency_us", "int8_note")})
    write_report(report, out)


def soft_targets(teacher_probs: np.ndarray, y: np.ndarray, temperature: float, alpha: float) -> np.ndarray:
    """A rocket student's ridge targets [N, K]: `alpha` of the labels' ±1 and the rest the teacher's probabilities
    softened at `temperature` (as the recurrent students' soft loss softens logits), on the same scale (2p − 1)."""
    z = np.log(np.maximum(teacher_probs.astype(np.float64), 1e-12)) / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    from .rocket import signs

    return alpha * signs(y, p.shape[1]) + (1.0 - alpha) * (2.0 * p - 1.0)


def _distill_rocket(
    ds: Dataset,
    tcfg: ModelConfig,
    teacher_dir: str | Path,
    student: StudentSpec,
    out: Path,
    opts: DistillOptions,
    say: Progress,
    overwrite: bool = False,
) -> dict:
    """A rocket teacher into a rocket model of about `student.units` shares: thresholds drawn from the teacher's
    training split as `train` draws them (same seed), the ridge head fitted to the labels mixed with the teacher's
    softened probabilities. The baseline is the same student fitted to the labels alone: the same thresholds, so
    the two differ only by what the teacher taught."""
    from dataclasses import fields

    from ..models.cost import rocket_params
    from ..models.modeldir import ROCKET_FILE
    from ..runtime.rocket import read_rocket
    from . import rocket as rt

    known = {f.name for f in fields(TrainOptions)}
    topts = TrainOptions(**{k: v for k, v in tcfg.training.items() if k in known})
    topts = replace(topts, shares=student.units)  # nothing of fit's: a rocket model has no epochs
    topts.check()
    val, test = teacher_sets(tcfg)
    cfg, prep = rt.split(ds, topts, say, val, test)
    same_split = split_matches(ds, prep, tcfg, say)
    _, ta = read_rocket(Path(teacher_dir) / ROCKET_FILE)
    fixed, shares = rt.draw(cfg, prep, topts.seed, student.units, say)  # the shares both heads are fitted to
    y = prep.train.y.astype(int)
    taught = soft_targets(rt.predict(tcfg, prep.train.X, ta), y, opts.temperature, opts.alpha)
    base = {**fixed, **rt.ridge(shares, y, cfg.n_outputs)}
    a = {**fixed, **rt.ridge(shares, y, cfg.n_outputs, taught)}
    cfg = rt.sized(cfg, a)
    cfg.training = {
        **cfg.training,
        "distill": {"teacher": str(teacher_dir), "temperature": opts.temperature, "alpha": opts.alpha},
    }

    def tested(c: ModelConfig, arrays: dict) -> dict:
        return score(c, prep.test, rt.predict(c, prep.test.X, arrays))

    t_params = rocket_params(int(np.asarray(ta["thresholds"]).size), tcfg.n_outputs)
    s_params = rocket_params(cfg.units, cfg.n_outputs)
    teacher_test, student_test, base_test = tested(tcfg, ta), tested(cfg, a), tested(cfg, base)
    say(f"teacher: rocket, {t_params} parameters; student: rocket, {s_params} ({t_params / s_params:.1f}x fewer)")
    report = {
        "task": "classify",
        "data": ds.source,
        "split_matches_teacher": same_split,
        "temperature": opts.temperature,
        "alpha": opts.alpha,
        "seed": topts.seed,
        "max_epochs": None,
        "models": [
            _entry("teacher", tcfg, t_params, teacher_test, None, str(teacher_dir)),
            _entry("student", cfg, s_params, student_test, None, str(out)),
            _entry("baseline", cfg, s_params, base_test, None, None),
        ],
        "param_ratio": t_params / s_params,
        "student_vs_teacher": _relative("classify", teacher_test, student_test),
        "baseline_vs_teacher": _relative("classify", teacher_test, base_test),
    }

    extra = {"distilled_from": str(teacher_dir)}
    rt.write_model_dir(
        out, cfg, a, prep, extra, lambda folder: write_report(report, folder), student_test, overwrite=overwrite
    )
    if opts.measure_int8:
        add_int8(report, teacher_dir, tcfg, out, cfg, say)
    return report


def _relative(task: str, teacher: dict, other: dict) -> float:
    """Accuracy as a fraction of the teacher's (classification); RMSE over the teacher's (regression)."""
    if task == "classify":
        return other["accuracy"] / teacher["accuracy"] if teacher["accuracy"] else float("nan")
    return other["rmse"] / teacher["rmse"] if teacher["rmse"] else float("nan")
