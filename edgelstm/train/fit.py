"""`edgelstm train`: fit a recurrent model on windowed sensor data and write a model directory."""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from ..capabilities import cfg_arch, model_length, shape_why_not, why_not
from ..data.dataset import Dataset
from ..data.normalize import INPUT_MAPS
from ..data.prepare import Prepared, data_record, model_inputs, model_targets, prepare
from ..data.splits import SPLIT_BY
from ..errors import InputError
from ..evaluate.metrics import score
from ..models.config import ModelConfig
from ..models.modeldir import KERAS_FILE, check_replaceable, staging
from .guard import check_numbers, finite_loss_callback

Progress = Callable[[str], None]


# Augmented copies of each training window for classification (augment.py says why)
DEFAULT_AUGMENT = 3
DEFAULT_INPUT_MAP = "auto"  # a classifier's (data/normalize.py INPUT_MAPS)
DEFAULT_WINDOW = 100
# Windows longer than this are stepped in frames of ~1/FRAME_STEPS of the window. Measured with bench/accuracy.py
# (1 seed, int8 step model, official test split): ACSF1 (T 1460) 0.280 → 0.490 with frames of 12, PLAID (T up to
# 1344) 0.261 → 0.397 with frames of 11, and training 4-10x faster; a convolutional front-end instead gave 0.400
# and 0.238. Windows up to 250 samples (BasicMotions, JapaneseVowels, MIT-BIH beats, the sample data) are unchanged.
LONG_WINDOW = 250
FRAME_STEPS = 125


def auto_frame(window: int, exact: bool = False) -> int:
    """Samples per step for a window: 1 up to LONG_WINDOW, else ceil(window / FRAME_STEPS). exact=True (a window
    the user gave or the default) takes the nearest frame up to twice that which divides the window, else 1."""
    if window <= LONG_WINDOW:
        return 1
    k = -(-window // FRAME_STEPS)
    if not exact:
        return k
    return next((f for f in range(k, 2 * k + 1) if window % f == 0), 1)


# Training length with --epochs auto: enough epochs for about STEP_BUDGET optimizer steps, within [MIN_EPOCHS,
# MAX_EPOCHS]. The default 30 epochs gave ACSF1's 320 augmented windows 300 steps: its models ended under-fitted
# (training accuracy about 0.85). With --patience 0 it is tune's "long" recipe (tune.py RECIPES has the numbers);
# not the default, for what it cost in int8 there.
STEP_BUDGET = 2000
MIN_EPOCHS, MAX_EPOCHS = 30, 200
AUTO_EPOCHS = "auto"  # --epochs auto: budget_epochs sizes the run


def budget_epochs(n_windows: int, opts: FitOptions) -> int:
    """--epochs if given, else the epochs STEP_BUDGET asks for `n_windows` windows per epoch (never fewer than
    --min-epochs or the warm-up needs)."""
    if opts.epochs != AUTO_EPOCHS:
        return opts.epochs
    steps = max(1, math.ceil(n_windows / opts.batch_size))
    budget = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(STEP_BUDGET / steps)))
    return max(budget, opts.min_epochs, opts.warmup + 1)


LR_SCHEDULES = ("constant", "cosine", "plateau")
# The recipe a classifier trains with unless told otherwise, chosen with bench/accuracy.py (3 seeds, official test
# splits, int8 step model; docs/accuracy.md): against the plain recipe, BasicMotions 0.900 -> 0.967 (seed spread 25
# -> 5 points) and ACSF1 0.537 -> 0.593, JapaneseVowels -0.4 and PLAID -1.6 points. Dropout 0.2 as well helped on
# real data but cost the sample data's LSTM 32 its int8 agreement (98.7 %); label smoothing carries the gain.
# Regression, forecasting and distilled students keep the plain recipe: nothing measured it there.
CLASSIFY_RECIPE = {
    "lr_schedule": "cosine",
    "weight_decay": 1e-4,
    "label_smoothing": 0.1,
    "input_map": DEFAULT_INPUT_MAP,
}
PLAIN_RECIPE = {"lr_schedule": "constant", "weight_decay": 0.0, "label_smoothing": 0.0}
# What every recipe leaves as it was: 30 epochs at most, early stopping after 6 without a better validation loss.
FIT_DEFAULTS = {"epochs": 30, "patience": 6}
MODEL_DEFAULTS = {"conv": [], "pool": "last"}
# A classifier over long series (windows stepped in frames: over LONG_WINDOW samples) trains to the end of a budget
# of about STEP_BUDGET steps, every channel quantile-mapped, a 5:32 conv front-end and the maxconv head (the running
# max of the cells' outputs and of the front-end's features): evidence can sit anywhere in a long series.
# bench/accuracy.py, 3 seeds, int8 step model, against the defaults of before (docs/accuracy.md): ACSF1 0.593 ->
# 0.823, PLAID 0.645 -> 0.687; with the max head alone 0.797 / 0.663, without the conv 0.750 / 0.682, without conv
# and head 0.741 / 0.688. Windows up to LONG_WINDOW (BasicMotions, JapaneseVowels, MIT-BIH, the sample data) keep
# FIT_DEFAULTS and MODEL_DEFAULTS.
LONG_SERIES_RECIPE = {
    "epochs": AUTO_EPOCHS,
    "patience": 0,
    "input_map": "quantile",
    "pool": "maxconv",
    "conv": [[5, 32]],
}
# A classifier over variable-length sequences (each one recording, one label, stepped from zero state: a pooled
# head never outlives its sequence) gets the same front-end and head. bench/accuracy.py, 3 seeds, int8 step model:
# JapaneseVowels 0.969 ± 0.007 -> 0.977 ± 0.002 (run 20261207T104738Z-ec7681fa). Fixed windows keep
# MODEL_DEFAULTS: a pooled head over a continuous stream needs `run --window`, which the runner does not choose.
SEQUENCE_RECIPE = {"pool": "maxconv", "conv": [[5, 32]]}
# `--arch rocket` (train/rocket.py): the classifiers' input map (heavy-tailed channels quantile-mapped, the others
# linear: the map would bend an ECG's beat shape), no augmentation, no front-end or pooled head of the recurrent
# models'. Against every channel quantile-mapped (bench/accuracy.py, 3 seeds, int8; docs/accuracy.md): MIT-BIH
# 0.991 / 0.986 -> 0.995 / 0.987 (macro-F1 0.546 -> 0.625), JapaneseVowels +0.1, ACSF1 -0.4 (8 seeds), PLAID and
# BasicMotions unchanged.
ROCKET_RECIPE = {"input_map": DEFAULT_INPUT_MAP, "augment": 0, "conv": [], "pool": "last"}


def default_arch(task: str, windows: bool, window: int) -> str:
    """The model `train` makes when not told: a rocket classifier (train/rocket.py) over data that come as windows
    or sequences, each classified on its own (an NPZ of windows, `lengths`, `--sequences`), and over long series,
    where the recurrent recipes already pool over the whole sequence; an LSTM otherwise (a continuous recording cut
    into short windows, whose step model runs on over the stream, and every regressor and forecaster).

    bench/accuracy.py, 3 seeds, int8, official test splits (run 20261207T195134Z, docs/accuracy.md), against the
    LSTM defaults: BasicMotions 0.967 -> 1.000, JapaneseVowels 0.977 -> 0.986, PLAID 0.687 -> 0.956, ACSF1 0.823 ->
    0.913, MIT-BIH 0.988 -> 0.988 (macro-F1 0.497 -> 0.546). Not over a continuous recording cut into short
    windows: there its shares would count since the last reset, which the runner does not bound by itself."""
    fits = window > 8  # a fixed window counts only the steps whose 9 taps lie inside it
    return "rocket" if task == "classify" and fits and (windows or window > LONG_WINDOW) else "lstm"


@dataclass
class FitOptions:
    """How a model is fitted: one definition for train and distill (and one set of CLI options, cli/options.py)."""

    # None: the recipe's (FIT_DEFAULTS, LONG_SERIES_RECIPE); AUTO_EPOCHS: by STEP_BUDGET once the windows are known
    epochs: int | str | None = None
    batch_size: int = 32
    learning_rate: float = 3e-3
    clip: str = "norm"
    clip_at: float = 1.0
    patience: int | None = None  # early stopping on val_loss; 0: none, the last epoch is kept; None: the recipe's
    min_epochs: int = 0  # early stopping neither ends training nor keeps an epoch before this one
    augment: int | None = None  # augmented copies per training window; None: 3 for classification, 0 otherwise
    aug_gain: float = 0.2
    aug_jitter: float = 0.1
    aug_warp: float = 0.0  # σ of the time- and magnitude-warping knots (data/augment.py warp_windows); 0: off
    axes: str = ""  # the axis triplets to rotate, by channel name ("ax,ay,az;gx,gy,gz"); "": found from names
    aug_rotate: float = 0.0  # degrees: random 3-D rotations of axis triplets (acc_x/acc_y/acc_z …) per copy
    # None below: the recipe's (CLASSIFY_RECIPE or PLAIN_RECIPE, by task; resolve_recipe)
    lr_schedule: str | None = None  # constant | cosine (after `warmup` epochs of linear warm-up) | plateau
    warmup: int = 0
    weight_decay: float | None = None  # > 0: AdamW (decoupled weight decay)
    label_smoothing: float | None = None
    class_weight: str = "none"  # none | balanced (each class weighs N / (K n_c))
    mixup: float = 0.0  # α of mixup's Beta(α, α) blend of training-window pairs (data/augment.py mixup); 0: off

    def resolve_recipe(self, recipe: dict) -> None:
        """Fill every option left at None with the recipe's value."""
        for name, value in recipe.items():
            if hasattr(self, name) and getattr(self, name) is None:
                setattr(self, name, copy.deepcopy(value))  # a recipe's lists are never shared with an options object

    def check_fit(self) -> None:
        self.resolve_recipe(PLAIN_RECIPE)  # a caller that chose no recipe gets the plain one
        self.resolve_recipe(FIT_DEFAULTS)
        check_numbers(self)  # train/guard.py: finite numbers, lr and clip-at > 0
        if self.epochs != AUTO_EPOCHS and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise InputError("--epochs must be a whole number of at least 1, or auto")
        if self.batch_size < 1:
            raise InputError("--batch-size must be at least 1")
        if self.clip not in ("norm", "value"):
            raise InputError("--clip must be 'norm' or 'value'")
        # with --epochs left to the budget, budget_epochs trains at least --min-epochs and warm-up + 1 epochs
        most = self.epochs if self.epochs != AUTO_EPOCHS else max(self.min_epochs, self.warmup + 1)
        if not 0 <= self.min_epochs <= most:
            raise InputError("--min-epochs must be in [0, --epochs]")
        if self.augment is not None and self.augment < 0:
            raise InputError("--augment must be 0 or more")
        if not 0 <= self.aug_gain < 1 or self.aug_jitter < 0:
            raise InputError("--aug-gain must be in [0, 1) and --aug-jitter at least 0")
        if not 0 <= self.aug_warp < 1:
            raise InputError("--aug-warp must be in [0, 1)")
        if not 0 <= self.aug_rotate <= 180:
            raise InputError("--aug-rotate must be in [0, 180] degrees")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}")
        if self.warmup < 0 or self.warmup >= most:
            raise InputError("--warmup must be at least 0 and fewer than --epochs")
        if self.weight_decay < 0 or not 0 <= self.label_smoothing < 1:
            raise InputError("--weight-decay must be at least 0 and --label-smoothing in [0, 1)")
        if self.class_weight not in ("none", "balanced"):
            raise InputError("--class-weight must be 'none' or 'balanced'")
        if not 0 <= self.mixup <= 10:
            raise InputError("--mixup must be in [0, 10] (0: off; 0.2-0.4 is usual)")

    def fit_options(self) -> dict:
        """This object's FitOptions fields, to hand on (distill's student is trained with them)."""
        return {f.name: getattr(self, f.name) for f in fields(FitOptions)}


@dataclass
class TrainOptions(FitOptions):
    arch: str | None = "lstm"  # None: default_arch, once the data are known
    task: str = "classify"
    units: int = 64
    layers: int = 1
    window: int | None = None  # None: an NPZ's own window length, else DEFAULT_WINDOW
    stride: int | None = None  # None: half a window for classification; 1 (every target) otherwise
    horizon: int = 1
    merge: str = "concat"
    dropout: float = 0.0
    peephole: bool = False
    conv: list[list[int]] | None = None  # causal Conv1D front-end, [kernel, filters] per layer; None: the recipe's
    frame: int | None = None  # samples per step (the window is whole frames); None: auto_frame
    pool: str | None = None  # what the head sees (models/config.py POOLS); None: the recipe's
    input_map: str | None = None  # a classifier's raw-channel map (data/normalize.py INPUT_MAPS); None: the default
    seed: int = 0
    split_by: str = "recording"  # what no two splits share: subject, recording, or time
    variable_length: bool = False  # set by resolve: the data are sequences of different lengths (padded, masked)
    shares: int | None = None  # a rocket model's size, about this many shares (None: train/rocket.py SHARES)

    def resolve(self, ds: Dataset, *others: Dataset | None) -> None:
        """The window, frame and stride the data implies where none was given. Regression and forecast windows
        keep every target: a forecaster trained at stride 50 on 14,016 half-hours saw 195 windows. Variable-length
        sequences: the longest in any of the datasets. A window over LONG_WINDOW samples is stepped in frames
        (auto_frame)."""
        given = [d.windows.X for d in (ds, *others) if d is not None and d.windows is not None]
        from_data = self.window is None and bool(given)
        self.variable_length = any(np.isnan(X).any() for X in given)
        if self.window is None:
            self.window = max(int(X.shape[1]) for X in given) if given else DEFAULT_WINDOW
        if self.arch is None:  # --arch not given, nor an option only the recurrent models take (cli/train.py)
            self.arch = default_arch(self.task, bool(given), self.window)
        if self.frame is None:  # a rocket model steps every sample: its kernels' dilations span the window
            self.frame = 1 if self.arch == "rocket" else auto_frame(self.window, exact=not from_data)
        if from_data and self.window % self.frame:
            # whole frames: variable-length sequences get more padding, fixed windows lose their oldest
            # T mod frame samples (data/prepare.py pad_to)
            frames = self.window / self.frame
            self.window = int(np.ceil(frames) if self.variable_length else frames) * self.frame
        if self.stride is None:
            self.stride = max(1, self.window // 2) if self.task == "classify" else 1

    def buildable(self, recipe: dict) -> dict:
        """The recipe, less its front-end and head where capabilities.RULES refuse them for this arch (a BiLSTM: its
        backward direction is not causal), so `train --arch bilstm` on a long series trains without them. What the
        user gave is left for ModelConfig to refuse with its reason."""
        conv = self.conv if self.conv is not None else recipe.get("conv", [])
        pool = self.pool if self.pool is not None else recipe.get("pool", "last")
        if shape_why_not(self.arch, self.layers, self.peephole, conv, pool):
            return {k: v for k, v in recipe.items() if k not in ("conv", "pool")}
        return recipe

    def check(self) -> None:
        if self.arch == "rocket":
            if self.task != "classify":
                raise InputError("--arch rocket classifies: its head scores classes from shares of threshold crossings")
            if not self.variable_length and self.window <= 8:
                raise InputError(
                    f"--arch rocket counts the steps of a window whose 9 taps lie inside it; windows of {self.window} "
                    "samples hold none (use --arch lstm)"
                )
            if self.conv or self.pool not in (None, "last") or (self.frame or 1) > 1:
                raise InputError(
                    "--conv, --pool and --frame shape the recurrent models; a rocket model has fixed kernels over "
                    "every sample and a linear head"
                )
            if self.shares is not None and self.shares < 1:
                raise InputError("--shares must be at least 1")
            self.resolve_recipe(ROCKET_RECIPE)
        elif self.shares is not None:
            raise InputError("--shares sizes a rocket model (--arch rocket)")
        elif self.task == "classify" and self.frame is not None and self.frame > 1:
            # with --conv none there is no front-end for the recipe's head to pool: the plain max head
            recipe = LONG_SERIES_RECIPE if self.conv != [] else {**LONG_SERIES_RECIPE, "pool": "max"}
            self.resolve_recipe(self.buildable(recipe))
        elif self.task == "classify" and self.variable_length and self.conv != []:
            self.resolve_recipe(self.buildable(SEQUENCE_RECIPE))
        self.resolve_recipe(CLASSIFY_RECIPE if self.task == "classify" else PLAIN_RECIPE)
        self.resolve_recipe(MODEL_DEFAULTS)
        for name in ("units", "layers", "window", "stride", "horizon", "frame"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1")
        if not 0 <= self.dropout < 1:
            raise InputError("--dropout must be in [0, 1)")
        if self.split_by not in SPLIT_BY:
            raise InputError(f"--split-by must be one of {', '.join(SPLIT_BY)}")
        self.check_fit()
        if self.input_map is None:
            self.input_map = "linear"  # regression and forecast: no recipe maps their inputs
        if self.input_map not in INPUT_MAPS:
            raise InputError(f"--input-map must be one of {', '.join(INPUT_MAPS)}")
        if self.task != "classify" and self.mixup:
            raise InputError("--mixup applies to classification: it blends class labels")
        if self.task != "classify" and self.input_map != "linear":
            raise InputError(
                "--input-map applies to classification: regression and forecast inputs share their units "
                "with the targets"
            )
        if self.augment is None:
            self.augment = DEFAULT_AUGMENT if self.task == "classify" else 0


def make_config(ds: Dataset, prep: Prepared, opts: TrainOptions, **model_overrides) -> ModelConfig:
    mean, std = prep.norm.to_lists()
    center, scale = prep.norm.compand_lists()
    knots, values = prep.norm.quantile_lists()
    tmean, tstd = prep.target_norm.to_lists() if prep.target_norm else ([], [])
    fields = dict(
        arch=opts.arch,
        task=opts.task,
        units=opts.units,
        layers=opts.layers,
        merge=opts.merge,
        dropout=opts.dropout,
        peephole=opts.peephole,
        conv=[list(c) for c in opts.conv],
        frame=opts.frame,
        pool=opts.pool,
    )
    fields.update(model_overrides)
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
        compand_center=center,
        compand_scale=scale,
        quantile_knots=knots,
        quantile_values=values,
        target_mean=tmean,
        target_std=tstd,
        sample_rate=ds.sample_rate,
        masked=bool(np.isnan(prep.train.X).any()),
    )


def optimizer(keras, opts: FitOptions):
    clip = {"clipnorm": opts.clip_at} if opts.clip == "norm" else {"clipvalue": opts.clip_at}
    if opts.weight_decay > 0:
        return keras.optimizers.AdamW(learning_rate=opts.learning_rate, weight_decay=opts.weight_decay, **clip)
    return keras.optimizers.Adam(learning_rate=opts.learning_rate, **clip)


def lr_at(epoch: int, opts: FitOptions) -> float:
    """The cosine schedule with linear warm-up: base · (e+1)/w during warm-up, then a half cosine to 0."""
    base, w, n = opts.learning_rate, opts.warmup, opts.epochs
    if epoch < w:
        return base * (epoch + 1) / w
    return 0.5 * base * (1.0 + math.cos(math.pi * (epoch - w) / max(1, n - w)))


def schedule_callbacks(keras, opts: FitOptions) -> list:
    if opts.lr_schedule == "cosine":
        return [keras.callbacks.LearningRateScheduler(lambda e, _lr: lr_at(e, opts))]
    if opts.lr_schedule == "plateau":
        return [keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=max(1, (opts.patience or 6) // 2), min_lr=1e-5)]
    if opts.warmup:
        return [
            keras.callbacks.LearningRateScheduler(
                lambda e, lr: lr_at(e, opts) if e < opts.warmup else opts.learning_rate
            )
        ]
    return []


def class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    """N / (K n_c) per class present: a rare class weighs as much in the loss as a common one."""
    counts = np.bincount(y, minlength=n_classes)
    return {c: float(len(y) / (n_classes * n)) for c, n in enumerate(counts) if n}


def mixup_batches(keras, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None, alpha: float, batch: int, seed: int):
    """The training windows as a Keras Sequence of mixup batches: each epoch a new order and new blends (seeded)."""
    from ..data.augment import mixup

    class _Mixup(keras.utils.Sequence):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(X))

        def __len__(self) -> int:
            return math.ceil(len(X) / batch)

        def __getitem__(self, i: int):
            idx = self.order[i * batch : (i + 1) * batch]
            xb, yb, wb = mixup(X[idx], Y[idx], alpha, self.rng, None if w is None else w[idx])
            return (xb, yb) if wb is None else (xb, yb, wb)

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(X))

    return _Mixup()


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
    if opts.epochs == AUTO_EPOCHS:  # recorded with the model: what was trained, not the budget rule
        opts = replace(opts, epochs=budget_epochs(len(prep.train.X), opts))
        if cfg.training is not None and "epochs" in cfg.training:
            cfg.training["epochs"] = opts.epochs
    classify = cfg.task == "classify"
    y_train, y_val = targets or (model_targets(cfg, prep.train.y), model_targets(cfg, prep.val.y))
    default_loss = "sparse_categorical_crossentropy" if classify else "mse"
    mix = classify and opts.mixup > 0 and targets is None
    if loss is None and classify and (opts.label_smoothing or mix):
        # label smoothing and mixup's blended labels need one-hot targets (the sparse loss has no such option)
        default_loss = keras.losses.CategoricalCrossentropy(label_smoothing=opts.label_smoothing)
        y_train, y_val = (np.eye(cfg.n_outputs, dtype=np.float32)[y] for y in (y_train, y_val))
    model.compile(
        optimizer=optimizer(keras, opts),
        loss=loss or default_loss,
        metrics=metrics or (["accuracy"] if classify else ["mae"]),
    )
    weights = None
    if classify and opts.class_weight == "balanced" and targets is None:
        weights = class_weights(prep.train.y, cfg.n_outputs)
    data: dict = {"x": model_inputs(cfg, prep.train.X), "y": y_train, "class_weight": weights}
    if mix:  # a fresh blend of every batch at every epoch; class weights ride along as blended sample weights
        w = None if weights is None else np.asarray([weights[c] for c in prep.train.y], np.float32)
        data = {"x": mixup_batches(keras, data["x"], y_train, w, opts.mixup, opts.batch_size, opts.seed)}
    hist = model.fit(
        **data,
        validation_data=(model_inputs(cfg, prep.val.X), y_val),
        epochs=opts.epochs,
        batch_size=None if mix else opts.batch_size,
        shuffle=not mix,  # the batches shuffle themselves
        verbose=0,
        callbacks=[
            *early_stopping(keras, opts),
            *schedule_callbacks(keras, opts),
            progress_callback(keras, progress, opts.epochs),
            finite_loss_callback(keras),  # train/guard.py: a non-finite loss stops here, nothing written
        ],
    )
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    if progress and history.get("val_loss"):
        progress(stopping_line(history, opts.epochs, opts.patience, opts.min_epochs))
    return history


def early_stopping(keras, opts: FitOptions) -> list:
    """Early stopping on validation loss, keeping the best epoch's weights; none with --patience 0."""
    if not opts.patience:
        return []
    return [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=opts.patience, restore_best_weights=True, start_from_epoch=opts.min_epochs
        )
    ]


def epoch_kept(history: dict, start: int = 0, patience: int = 1) -> int | None:
    """The epoch (from 1) whose weights were kept: the last without early stopping, else the first lowest val_loss
    from epoch `start` + 1 on, as EarlyStopping(restore_best_weights) keeps it (--min-epochs: earlier epochs are not
    watched)."""
    losses = history.get("val_loss")
    if losses and not patience:
        return len(losses)
    if not losses:
        return None
    start = min(start, len(losses) - 1)
    return int(np.argmin(losses[start:])) + start + 1


def stopping_line(history: dict, epochs: int, patience: int, start: int = 0) -> str:
    """Say whether early stopping ended training, and which epoch's weights are kept."""
    run, kept = len(history["val_loss"]), epoch_kept(history, start, patience)
    best = f"epoch {kept} (val_loss {history['val_loss'][kept - 1]:.4f})"
    if not patience:
        return f"trained all {epochs} epochs without early stopping; kept the last, {best}"
    if run < epochs:
        return (
            f"early stopping after epoch {run}/{epochs}: val_loss had not improved for {patience} epochs; "
            f"kept the weights of {best}"
        )
    return f"trained all {epochs} epochs; kept the weights of {best}, the lowest val_loss"


def predict(model, cfg: ModelConfig, X: np.ndarray) -> np.ndarray:
    return model.predict(model_inputs(cfg, X), batch_size=256, verbose=0)


def protocol(cfg: ModelConfig) -> str:
    """How the held-out figures were made, said with every number (k-fold over windows of the same recordings
    overstates accuracy on the next subject)."""
    t = cfg.training
    if t.get("test_data"):
        return f"the test file {t['test_data']} (nothing of the training data held out)"
    if t.get("tune"):
        u = t["tune"]
        return (
            f"tune, {u['trials']} trials: out-of-fold int8 step-model predictions of the winner's {u['folds']} "
            f"leave-{u['by']}-out fold models; the saved model is trained on all of the data"
        )
    if t.get("cv"):
        return (
            f"leave-{t['cv_by']}-out cross-validation, {t['cv']} folds: out-of-fold predictions of {t['cv']} "
            f"models; the saved model is trained on all of the data"
        )
    by = t.get("split_by", "recording")
    what = {"subject": "subjects", "recording": "recordings", "time": "the last part of each recording, in time"}[by]
    if by == "time":
        return f"held out: {what} (15 %)"
    return f"held out: 15 % of the {what}, unseen in training (seed {t.get('seed', 0)})"


def write_model_dir(
    out: Path,
    model,
    cfg: ModelConfig,
    prep: Prepared,
    history: dict,
    extra_metrics: dict | None = None,
    extra_files: Callable[[Path], None] | None = None,
    test_metrics: dict | None = None,
    overwrite: bool = False,
) -> dict:
    """Save the model, its config and held-out metrics with plots; returns the metrics.

    `extra_files(folder)` writes more files (a distillation report) into the same atomic staging folder;
    `test_metrics` stand for a test split that was not held out (cross-validation's out-of-fold figures);
    an existing model directory `out` is replaced only if `overwrite`.
    """
    from .. import plots
    from ..models.build import count_params

    metrics = {
        "test": test_metrics or score(cfg, prep.test, predict(model, cfg, prep.test.X)),
        "validation": score(cfg, prep.val, predict(model, cfg, prep.val.X)),
        "params": count_params(model),
        "epochs_run": len(next(iter(history.values()))) if history else 0,
        "epoch_kept": epoch_kept(history, int(cfg.training.get("min_epochs", 0)), int(cfg.training.get("patience", 1))),
        "protocol": protocol(cfg),
        "split": {
            k: {
                "windows": len(w),
                "recordings": sorted(set(w.groups.tolist())),
                **({"subjects": sorted(set(w.subjects.tolist()))} if w.subjects is not None else {}),
            }
            for k, w in (("train", prep.train), ("validation", prep.val), ("test", prep.test))
        },
        **(extra_metrics or {}),
    }
    with staging(out, overwrite) as tmp:
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


def fit_one(
    ds: Dataset,
    opts: TrainOptions,
    progress: Progress | None = None,
    val: Dataset | None = None,
    test: Dataset | None = None,
    hold_out_test: bool = True,
):
    """Split, build and fit one model: (model, cfg, prep, history). train and each cross-validation fold use it."""
    from .._deps import keras as _keras
    from ..models.build import build_model

    keras = _keras()
    prep = prepare(
        ds,
        opts.window,
        opts.stride,
        opts.task,
        opts.horizon,
        opts.seed,
        val,
        test,
        opts.split_by,
        hold_out_test,
        frame=opts.frame,
        input_map=opts.input_map,
    )
    cfg = make_config(ds, prep, opts)
    why = why_not(cfg_arch(cfg), length=model_length(cfg))
    if why:
        raise InputError(f"{ds.source}: variable-length sequences: {why}" if cfg.masked else why)
    if cfg.masked and opts.mixup and cfg.task == "classify":
        raise InputError(
            f"{ds.source}: --mixup blends two windows step by step; sequences of different lengths have no common "
            "steps to blend (their padding would turn into values)"
        )
    cfg.training = {
        **asdict(opts),
        **data_record(ds, val, test),
        "columns": ds.columns,
    }
    if progress:
        from ..data.splits import describe_split

        progress(f"data: {describe_split(prep.train, prep.val, prep.test)}, {ds.n_features} channels")
    keras.utils.set_random_seed(opts.seed)
    model = build_model(cfg)
    if progress:
        front = "".join(f"conv {k}:{f} → " for k, f in cfg.conv)
        progress(f"model: {front}{cfg.arch} {cfg.units}x{cfg.layers}, {model.count_params()} parameters")
    history = fit(model, cfg, augmented(prep, opts, progress, cfg.channels), opts, progress)
    return model, cfg, prep, history


def train(
    ds: Dataset,
    opts: TrainOptions,
    out: str | Path,
    progress: Progress | None = None,
    val: Dataset | None = None,
    test: Dataset | None = None,
    overwrite: bool = False,
) -> dict:
    """Train on `ds` and write the model directory `out` (replacing one only if `overwrite`); returns
    metrics.json's content. `val` / `test`: the user's own validation / test sets (then nothing of `ds` is held
    out for that split). Cross-validation: crossval.train_cv."""
    opts.resolve(ds, val, test)
    opts.check()
    check_replaceable(out, overwrite)
    model, cfg, prep, history = fit_one(ds, opts, progress, val, test)
    return write_model_dir(Path(out), model, cfg, prep, history, overwrite=overwrite)


def augmented(
    prep: Prepared, opts: TrainOptions, progress: Progress | None = None, channels: list[str] | None = None
) -> Prepared:
    """prep with its training windows augmented as opts ask (validation and test never are)."""
    if not opts.augment:
        return prep
    from ..data.augment import augment, axis_triplets, named_triplets

    triplets = []
    if opts.aug_rotate:
        triplets = named_triplets(opts.axes, channels or []) if opts.axes else axis_triplets(channels or [])
    train = augment(
        prep.train,
        prep.norm,
        opts.augment,
        opts.aug_gain,
        opts.aug_jitter,
        opts.seed,
        scale_inputs=opts.task == "classify",
        rotate=opts.aug_rotate,
        triplets=triplets,
        warp=opts.aug_warp,
    )
    if progress:
        gain = f"gain ±{opts.aug_gain:.0%}, " if opts.task == "classify" else ""
        progress(
            f"augmenting: {opts.augment} copies of each training window ({gain}jitter {opts.aug_jitter:g} σ"
            + (f", rotations up to {opts.aug_rotate:g}° of {len(triplets)} axis triplet(s)" if triplets else "")
            + (f", time and magnitude warping σ {opts.aug_warp:g}" if opts.aug_warp else "")
            + f") → {len(train)} windows"
        )
    return replace(prep, train=train)
