"""`edgelstm train`: fit a recurrent model on windowed sensor data and write a model directory."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset
from ..data.prepare import Prepared, model_inputs, model_targets, prepare
from ..errors import InputError
from ..evaluate.metrics import score
from ..models.config import ModelConfig
from ..models.modeldir import KERAS_FILE, check_replaceable, staging

Progress = Callable[[str], None]


# Augmented copies of each training window for classification (augment.py says why)
DEFAULT_AUGMENT = 3


@dataclass
class FitOptions:
    """How a model is fitted: one definition for train and distill (and one set of CLI options, cli/options.py)."""

    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 3e-3
    clip: str = "norm"
    clip_at: float = 1.0
    patience: int = 6
    augment: int | None = None  # augmented copies per training window; None: 3 for classification, 0 otherwise
    aug_gain: float = 0.2
    aug_jitter: float = 0.1

    def check_fit(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1")
        if self.clip not in ("norm", "value"):
            raise InputError("--clip must be 'norm' or 'value'")
        if self.augment is not None and self.augment < 0:
            raise InputError("--augment must be 0 or more")
        if not 0 <= self.aug_gain < 1 or self.aug_jitter < 0:
            raise InputError("--aug-gain must be in [0, 1) and --aug-jitter at least 0")

    def fit_options(self) -> dict:
        """This object's FitOptions fields, to hand on (distill's student is trained with them)."""
        return {f.name: getattr(self, f.name) for f in fields(FitOptions)}


@dataclass
class TrainOptions(FitOptions):
    arch: str = "lstm"
    task: str = "classify"
    units: int = 64
    layers: int = 1
    window: int = 100
    stride: int = 50
    horizon: int = 1
    merge: str = "concat"
    dropout: float = 0.0
    peephole: bool = False
    seed: int = 0

    def check(self) -> None:
        for name in ("units", "layers", "window", "stride", "horizon"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1")
        if not 0 <= self.dropout < 1:
            raise InputError("--dropout must be in [0, 1)")
        self.check_fit()
        if self.augment is None:
            self.augment = DEFAULT_AUGMENT if self.task == "classify" else 0


def make_config(ds: Dataset, prep: Prepared, opts: TrainOptions, **model_overrides) -> ModelConfig:
    mean, std = prep.norm.to_lists()
    tmean, tstd = prep.target_norm.to_lists() if prep.target_norm else ([], [])
    fields = dict(
        arch=opts.arch,
        task=opts.task,
        units=opts.units,
        layers=opts.layers,
        merge=opts.merge,
        dropout=opts.dropout,
        peephole=opts.peephole,
    )
    fields.update(model_overrides)
    try:
        return ModelConfig(
            **fields,
            window=opts.window,
            stride=opts.stride,
            horizon=opts.horizon if opts.task == "forecast" else 1,
            n_features=ds.n_features,
            n_outputs=prep.n_outputs,
            channels=list(ds.channels),
            labels=list(ds.labels) if opts.task == "classify" else [],
            targets=list(ds.targets),
            norm_mean=mean,
            norm_std=std,
            target_mean=tmean,
            target_std=tstd,
            sample_rate=ds.sample_rate,
        )
    except ValueError as ex:
        raise InputError(str(ex)) from None


def optimizer(keras, opts: TrainOptions):
    clip = {"clipnorm": opts.clip_at} if opts.clip == "norm" else {"clipvalue": opts.clip_at}
    return keras.optimizers.Adam(learning_rate=opts.learning_rate, **clip)


def progress_callback(keras, progress: Progress | None, epochs: int):
    class _Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if progress:
                parts = "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items())
                progress(f"epoch {epoch + 1}/{epochs}  {parts}  ({time.perf_counter() - self.t0:.1f}s)")

    return _Progress()


def fit(
    model,
    cfg: ModelConfig,
    prep: Prepared,
    opts: TrainOptions,
    progress: Progress | None,
    loss=None,
    targets: tuple[np.ndarray, np.ndarray] | None = None,
    metrics: list | None = None,
):
    """Compile and fit with early stopping on the validation split; returns the Keras history dict.

    Distillation passes its own `loss`, `metrics` and (train, validation) `targets` (hard labels plus the
    teacher's outputs); by default the targets are the windows' own.
    """
    from .._deps import keras as _keras

    keras = _keras()
    classify = cfg.task == "classify"
    model.compile(
        optimizer=optimizer(keras, opts),
        loss=loss or ("sparse_categorical_crossentropy" if classify else "mse"),
        metrics=metrics or (["accuracy"] if classify else ["mae"]),
    )
    y_train, y_val = targets or (model_targets(cfg, prep.train.y), model_targets(cfg, prep.val.y))
    hist = model.fit(
        model_inputs(cfg, prep.train.X),
        y_train,
        validation_data=(model_inputs(cfg, prep.val.X), y_val),
        epochs=opts.epochs,
        batch_size=opts.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(patience=opts.patience, restore_best_weights=True),
            progress_callback(keras, progress, opts.epochs),
        ],
    )
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}


def predict(model, cfg: ModelConfig, X: np.ndarray) -> np.ndarray:
    return model.predict(model_inputs(cfg, X), batch_size=256, verbose=0)


def write_model_dir(
    out: Path,
    model,
    cfg: ModelConfig,
    prep: Prepared,
    history: dict,
    extra_metrics: dict | None = None,
    extra_files: Callable[[Path], None] | None = None,
) -> dict:
    """Save the model, its config and held-out metrics with plots; returns the metrics.

    `extra_files(folder)` writes more files (a distillation report) into the same atomic staging folder.
    """
    from .. import plots
    from ..models.build import count_params

    metrics = {
        "test": score(cfg, prep.test, predict(model, cfg, prep.test.X)),
        "validation": score(cfg, prep.val, predict(model, cfg, prep.val.X)),
        "params": count_params(model),
        "epochs_run": len(next(iter(history.values()))) if history else 0,
        "split": {
            k: {"windows": len(w), "recordings": sorted(set(w.groups.tolist()))}
            for k, w in (("train", prep.train), ("validation", prep.val), ("test", prep.test))
        },
        **(extra_metrics or {}),
    }
    with staging(out) as tmp:
        model.save(tmp / KERAS_FILE)
        cfg.save(tmp)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (tmp / "history.json").write_text(json.dumps(history, indent=1) + "\n")
        if history:
            plots.training_curves(history, tmp / "training_curves.png", f"{cfg.arch} {cfg.units}x{cfg.layers}")
        if cfg.task == "classify":
            plots.confusion_matrix(metrics["test"]["confusion"], cfg.labels, tmp / "confusion.png")
        if extra_files:
            extra_files(tmp)
    return metrics


def train(ds: Dataset, opts: TrainOptions, out: str | Path, progress: Progress | None = None) -> dict:
    """Train on `ds` and write the model directory `out`; returns metrics.json's content."""
    opts.check()
    check_replaceable(out)
    from .._deps import keras as _keras
    from ..models.build import build_model

    keras = _keras()
    prep = prepare(ds, opts.window, opts.stride, opts.task, opts.horizon, opts.seed)
    cfg = make_config(ds, prep, opts)
    cfg.training = {**asdict(opts), "data": ds.source, "columns": ds.columns}
    if progress:
        from ..data.splits import describe_split

        progress(f"data: {describe_split(prep.train, prep.val, prep.test)}, {ds.n_features} channels")
    keras.utils.set_random_seed(opts.seed)
    model = build_model(cfg)
    if progress:
        progress(f"model: {cfg.arch} {cfg.units}x{cfg.layers}, {model.count_params()} parameters")
    history = fit(model, cfg, augmented(prep, opts, progress), opts, progress)
    return write_model_dir(Path(out), model, cfg, prep, history)


def augmented(prep: Prepared, opts: TrainOptions, progress: Progress | None = None) -> Prepared:
    """prep with its training windows augmented as opts ask (validation and test never are)."""
    if not opts.augment:
        return prep
    from ..data.augment import augment

    train = augment(
        prep.train,
        prep.norm,
        opts.augment,
        opts.aug_gain,
        opts.aug_jitter,
        opts.seed,
        scale_inputs=opts.task == "classify",
    )
    if progress:
        gain = f"gain ±{opts.aug_gain:.0%}, " if opts.task == "classify" else ""
        progress(
            f"augmenting: {opts.augment} copies of each training window ({gain}jitter {opts.aug_jitter:g} σ)"
            f" → {len(train)} windows"
        )
    return replace(prep, train=train)
