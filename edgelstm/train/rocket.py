"""`train --arch rocket`: MiniRocket's fixed kernels (runtime/rocket.py), thresholds drawn from the training data, and
a ridge head fitted in closed form — seconds on a CPU, no TensorFlow.

Why it is here: on 455 to 540 training series a recurrent network overfits (PLAID: training accuracy about 0.95,
test 0.69), while a linear model over thousands of fixed threshold-crossing shares does not (docs/accuracy.md).
The device form streams sample by sample (runtime/rocket.py), so it keeps edgelstm's promise of a step model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..data.prepare import Prepared, model_inputs, prepare
from ..evaluate.metrics import score
from ..models.config import ModelConfig
from ..models.cost import rocket_params
from ..models.modeldir import check_replaceable
from ..runtime import rocket as rk

# Shares a model aims at (MiniRocket's 10,000 cut for edge memory: the int8 head is shares x classes bytes): each
# (dilation, channel, kernel) response gets round(SHARES / responses) thresholds, at least 1.
SHARES = 4000
GOLDEN = (np.sqrt(5) - 1) / 2  # MiniRocket's quantile levels: (i + 1)·φ mod 1, spread evenly over (0, 1)
GRID_PERCENTILES = (0.1, 99.9)  # the grid spans these percentiles of the normalized training samples
SPREAD_FLOOR = 0.02  # the least spread a share is standardized by (`ridge`)
# Ridge penalties tried, the one with the least leave-one-out error kept. Quarter decades: over half decades the
# choice jumped between neighbours whose models read 3 points apart (ACSF1, 8 seeds: 0.88-0.93 -> 0.89-0.91).
ALPHAS = np.logspace(-3, 4, 29)
TEMPERATURES = np.logspace(-1, 2.5, 36)  # softmax temperatures tried on the leave-one-out scores


def sequences(cfg: ModelConfig, X: np.ndarray) -> list[np.ndarray]:
    """Raw windows [N, T, F] (variable-length ones NaN-padded in front) → each one's normalized samples, padding
    dropped: the step engine steps only a sequence's own samples."""
    Z = model_inputs(cfg, X, keep_padding=True)
    return [z[~np.isnan(z).any(axis=1)] for z in Z]


def fit_grid(seqs: list[np.ndarray]) -> np.ndarray:
    """(lo, step, pad level, levels): rk.LEVELS levels over the training samples' central range, pad = the level
    of 0."""
    lo, hi = np.percentile(np.concatenate(seqs), GRID_PERCENTILES)
    if not hi > lo:
        hi = lo + 1.0
    step = (hi - lo) / (rk.LEVELS - 1)
    return np.array([lo, step, np.clip(np.rint(-lo / step), 0, rk.LEVELS - 1), rk.LEVELS], np.float32)


def fit_thresholds(
    qs: list[np.ndarray], dil: list[int], pad: float, skip: np.ndarray, rng: np.random.Generator, aim: int = SHARES
) -> np.ndarray:
    """[D, F, 84, B]: MiniRocket's way — each (dilation, kernel) takes its thresholds from the counted responses of
    one random training series, at quantile levels that differ from one response to the next and together spread
    over (0, 1), so the shares are diverse and few sit at a flat signal's noise level."""
    F = qs[0].shape[1]
    B = rk.thresholds_per_response(aim, len(dil), F)
    D, J = len(dil), len(rk.KERNELS)
    levels = ((np.arange(D * J * F * B) + 1) * GOLDEN % 1).reshape(D, J, F, B)
    series = rng.integers(len(qs), size=(D, J))
    out = np.zeros((D, F, J, B), np.float32)
    for i in np.unique(series):
        c = rk.responses(qs[i], dil, pad)  # [T, D, F, 84]
        for d, j in zip(*np.nonzero(series == i)):
            counted = c[skip[d] :, d] if len(c) > skip[d] else c[:, d]
            for f in range(F):
                out[d, f, j] = np.quantile(counted[:, f, j], levels[d, j, f])
    return out


def signs(y: np.ndarray, K: int) -> np.ndarray:
    """One-vs-rest ridge targets: +1 for a series' class, −1 for the others."""
    Y = -np.ones((len(y), K))
    Y[np.arange(len(y)), y] = 1.0
    return Y


def ridge(Fx: np.ndarray, y: np.ndarray, K: int, targets: np.ndarray | None = None) -> dict:
    """A one-vs-rest ridge head (targets ±1, or `targets` [N, K]: a teacher's, distill.py) on the standardized
    shares, its penalty by exact leave-one-out error, and a softmax temperature by the leave-one-out scores' log-loss
    against the labels `y` (ridge scores are not probabilities). The standardization is folded into the weights, so
    the head stays linear in the raw shares.

    Standardized, a rare share weighs as much as a common one (ACSF1 0.880 -> 0.913, MIT-BIH 100->101 0.967 ->
    0.991; 3 seeds, int8; docs/accuracy.md). A share's spread counts as at least SPREAD_FLOOR: one that barely moves
    in training would get a weight so large that the int8 head's per-class scale followed it (PLAID int8 0.945 with
    a floor of 0.001, 0.956 with 0.02)."""
    mu = Fx.mean(axis=0)
    sd = np.maximum(Fx.std(axis=0), SPREAD_FLOOR)
    Z = (Fx - mu) / sd
    Y = signs(y, K) if targets is None else np.asarray(targets, np.float64)
    Yc = Y - Y.mean(axis=0)
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    UtY = U.T @ Yc
    best = None
    for alpha in ALPHAS:
        shrink = s**2 / (s**2 + alpha)
        fit = U @ (shrink[:, None] * UtY)
        hat = (U**2) @ shrink + 1.0 / len(y)  # the intercept's leverage too
        loo = (Yc - fit) / (1.0 - hat)[:, None]
        err = float((loo**2).sum())
        if best is None or err < best[0]:
            best = (err, alpha, Vt.T @ ((s / (s**2 + alpha))[:, None] * UtY) / sd[:, None], Yc - loo)
    _, alpha, W, loo_scores = best
    bias = Y.mean(axis=0)
    loo_scores = loo_scores + bias
    nll = []
    for t in TEMPERATURES:
        z = loo_scores * t
        z -= z.max(axis=1, keepdims=True)
        nll.append(float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean()))
    return {
        "mu": mu.astype(np.float32),
        "weights": W.astype(np.float32),
        "scale": np.ones(K, np.float32),
        "bias": bias.astype(np.float32),
        "temperature": np.float32(TEMPERATURES[int(np.argmin(nll))]),
        "alpha": float(alpha),
    }


def int8_head(a: dict) -> dict:
    """The head's weights as int8, one scale per class (max |w| / 127)."""
    W = np.asarray(a["weights"], np.float32) * a["scale"]
    scale = np.maximum(np.abs(W).max(axis=0), 1e-12) / 127.0
    return {**a, "weights": np.clip(np.rint(W / scale), -127, 127).astype(np.int8), "scale": scale.astype(np.float32)}


def features(cfg: ModelConfig, X: np.ndarray, a: dict) -> np.ndarray:
    """Raw windows → shares [N, features], as the interpreter counts them step by step."""
    qs = [rk.to_grid(z, a["grid"]) for z in sequences(cfg, X)]
    return np.stack([rk.shares(q, a["dilations"], float(a["grid"][2]), a["thresholds"], a["skip"]) for q in qs])


def predict(cfg: ModelConfig, X: np.ndarray, a: dict) -> np.ndarray:
    return rk.head(features(cfg, X, a), a) if len(X) else np.zeros((0, cfg.n_outputs), np.float32)


def draw(cfg: ModelConfig, prep: Prepared, seed: int, aim: int = SHARES, progress=None) -> tuple[dict, np.ndarray]:
    """The model's fixed part (grid, dilations, skips, about `aim` thresholds) from the training windows, and the
    training windows' shares [N, shares], which every head over them is fitted to (`fit`'s, a distilled one's)."""
    seqs = sequences(cfg, prep.train.X)
    grid = fit_grid(seqs)
    qs = [rk.to_grid(z, grid) for z in seqs]
    dil = rk.dilations(cfg.window)
    skip = rk.skips(dil, whole=cfg.masked)  # variable-length sequences are events, counted whole
    thresholds = fit_thresholds(qs, dil, float(grid[2]), skip, np.random.default_rng(seed), aim)
    if progress:
        n = thresholds.size
        b = thresholds.shape[-1]
        progress(f"model: rocket, {n} shares (84 kernels x dilations {dil} x {cfg.n_features} channels x {b})")
    Fx = np.stack([rk.shares(q, dil, float(grid[2]), thresholds, skip) for q in qs])
    return {"dilations": dil, "skip": skip, "grid": grid, "thresholds": thresholds}, Fx


def fit(cfg: ModelConfig, prep: Prepared, seed: int, aim: int = SHARES, progress=None) -> dict:
    """The model's arrays (runtime/rocket.py ARRAYS but meta) from the training windows, about `aim` shares."""
    fixed, Fx = draw(cfg, prep, seed, aim, progress)
    head = ridge(Fx, prep.train.y.astype(int), cfg.n_outputs)
    if progress:
        progress(f"head: ridge, penalty {head['alpha']:g} by leave-one-out, temperature {head['temperature']:.3g}")
    return {**fixed, **head}


def model_meta(cfg: ModelConfig, quantization: str) -> dict:
    """The .rocket file's metadata (the same schema as a .tflite's: the runner reads one kind of metadata)."""
    from ..modelfile.write import build_metadata, tensor_entry

    return build_metadata(
        cfg,
        "step",
        quantization,
        [tensor_entry("x", "x", [1, cfg.n_features])],
        [tensor_entry("y", "y", [1, cfg.n_outputs])],
        format="rocket",
    )


def write_model(path: Path, cfg: ModelConfig, a: dict, quantization: str = "float") -> None:
    rk.write_rocket(path, model_meta(cfg, quantization), a)


def quantize_rocket(model_dir: Path, cfg: ModelConfig, mode: str, out_dir: Path) -> Path:
    """step.<mode>.rocket from the model directory's float model.rocket (int8: int8_head)."""
    from ..models.modeldir import ROCKET_FILE

    _, a = rk.read_rocket(Path(model_dir) / ROCKET_FILE)
    a = int8_head(a) if mode == "int8" else a
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"step.{mode}.rocket"
    tmp = path.with_name(f".{path.name}.tmp")
    write_model(tmp, cfg, a, mode)
    tmp.replace(path)  # never a half-written model file
    return path


def fit_model(ds, opts, progress=None, val=None, test=None, hold_out_test: bool = True):
    """Split and fit one rocket model: (cfg, arrays, prep); fit.fit_one's counterpart, for train, each
    cross-validation fold and each tune trial."""
    cfg, prep = split(ds, opts, progress, val, test, hold_out_test)
    a = fit(cfg, prep, opts.seed, opts.shares or SHARES, progress)
    return sized(cfg, a), a, prep


def sized(cfg: ModelConfig, a: dict) -> ModelConfig:
    """The config with its share count as `units` (what metrics, costs and names read)."""
    return replace(cfg, units=int(np.asarray(a["thresholds"]).size))


def split(ds, opts, progress=None, val=None, test=None, hold_out_test: bool = True) -> tuple[ModelConfig, Prepared]:
    """(cfg, prep) of a rocket model on DATA. Nothing of DATA is held out for validation: nothing is chosen on it
    (the ridge penalty is chosen by leave-one-out)."""
    from ..data.prepare import data_record
    from .fit import make_config

    prep = prepare(
        ds, opts.window, opts.stride, opts.task, 1, opts.seed, val, test, opts.split_by, hold_out_test, frame=1,
        input_map=opts.input_map, hold_out_val=False,
    )  # fmt: skip
    cfg = make_config(ds, prep, opts)
    cfg.training = {**asdict(opts), **data_record(ds, val, test), "columns": ds.columns}
    if progress:
        from ..data.splits import describe_split

        progress(f"data: {describe_split(prep.train, prep.val, prep.test)}, {ds.n_features} channels")
    return cfg, prep


def train_rocket(ds, opts, out: Path, progress=None, val=None, test=None, overwrite: bool = False) -> dict:
    """The model directory of a rocket classifier; returns metrics.json's content (fit.train's counterpart;
    crossval.train_cv cross-validates one)."""
    opts.resolve(ds, val, test)
    opts.check()
    check_replaceable(out, overwrite)
    cfg, a, prep = fit_model(ds, opts, progress, val, test)
    return write_model_dir(out, cfg, a, prep, {}, overwrite=overwrite)


def write_model_dir(
    out: Path, cfg: ModelConfig, a: dict, prep: Prepared, extra_metrics: dict, extra=None, test_metrics=None,
    overwrite: bool = False,
) -> dict:  # fmt: skip
    """config.json, model.rocket (float), metrics.json, confusion.png, and what `extra(dir)` adds, written whole or
    not at all (fit.write_model_dir's counterpart); returns metrics.json's content. test_metrics: figures made
    elsewhere (out-of-fold), when the model has no test split of its own."""
    from .. import plots
    from ..models.modeldir import ROCKET_FILE, staging
    from .fit import protocol

    given_val = bool(cfg.training.get("val_data"))
    metrics = {
        "test": test_metrics or score(cfg, prep.test, predict(cfg, prep.test.X, a)),
        **({"validation": score(cfg, prep.val, predict(cfg, prep.val.X, a))} if given_val else {}),
        "params": rocket_params(int(np.asarray(a["thresholds"]).size), cfg.n_outputs),
        "ridge_alpha": a["alpha"],
        "protocol": protocol(cfg),
        **extra_metrics,
        "split": {
            k: {"windows": len(w), "recordings": sorted(set(w.groups.tolist()))}
            for k, w in (("train", prep.train), ("validation", prep.val), ("test", prep.test))
            if len(w) and (k != "validation" or given_val)
        },
    }
    with staging(out, overwrite) as tmp:
        cfg.save(tmp)
        write_model(tmp / ROCKET_FILE, cfg, a)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        plots.confusion_matrix(metrics["test"]["confusion"], cfg.labels, tmp / "confusion.png")
        if extra:
            extra(tmp)
    return metrics
