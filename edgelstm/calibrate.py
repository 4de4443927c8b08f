"""Calibration data for full-integer quantization: recipes (calibration/*.toml or NPZ) → representative samples."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .config import ModelConfig
from .errors import InputError
from .resources import data_dir

RECIPE_DIR = data_dir("calibration")


@dataclass
class Recipe:
    windows: int = 200
    split: str = "train"
    stratify: str = "class"
    seed: int = 0
    step_samples: int = 2000
    data: str | None = None
    npz: str | None = None
    source: str = "default"


def _toml(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as ex:
        raise InputError(f"{path}: not a valid TOML recipe ({ex})") from None


def load_recipe(spec: str | Path) -> Recipe:
    """A recipe from a name in calibration/, a .toml path, or an .npz path."""
    spec = str(spec)
    path = Path(spec)
    if path.suffix == ".npz":
        if not path.is_file():
            raise InputError(f"{path}: no such calibration file")
        return Recipe(npz=str(path), source=str(path))
    if path.suffix != ".toml":
        named = RECIPE_DIR / f"{spec}.toml"
        if not named.is_file():
            known = sorted(p.stem for p in RECIPE_DIR.glob("*.toml")) if RECIPE_DIR.is_dir() else []
            if spec == "default" and not known:
                return Recipe()
            raise InputError(
                f"unknown calibration recipe {spec!r}; use one of {', '.join(known) or 'default'}, a .toml or an .npz"
            )
        path = named
    elif not path.is_file():
        raise InputError(f"{path}: no such calibration recipe")
    data = _toml(path)
    names = {f.name for f in fields(Recipe)} - {"source"}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"{path}: unknown recipe key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    recipe = Recipe(**data, source=str(path))
    if recipe.split not in ("train", "val"):
        raise InputError(f"{path}: split must be 'train' or 'val' (the test split is what the report scores)")
    if recipe.stratify not in ("class", "none"):
        raise InputError(f"{path}: stratify must be 'class' or 'none'")
    if recipe.windows < 1 or recipe.step_samples < 1:
        raise InputError(f"{path}: windows and step_samples must be at least 1")
    return recipe


def training_columns(cfg: ModelConfig):
    """The ColumnSpec training read its data with: label, recording column and NaN policy as recorded in
    config.training["columns"] (model dirs from before that record get the defaults), channels and targets as
    resolved then (cfg.channels, cfg.targets)."""
    from .data import ColumnSpec

    rec = cfg.training.get("columns") or {}
    defaults = ColumnSpec()
    return ColumnSpec(
        task=cfg.task, label_col=rec.get("label_col", defaults.label_col),
        target_cols=tuple(cfg.targets) if cfg.task != "classify" else (),
        group_col=rec.get("group_col", defaults.group_col), channels=tuple(cfg.channels),
        nan=rec.get("nan", defaults.nan),
    )


def load_splits(cfg: ModelConfig, data: str | Path | None = None):
    """The splits training used: same data, same seed (config.training)."""
    from .data import load
    from .prepare import prepare

    source = data or cfg.training.get("data")
    if not source:
        raise InputError("the model directory does not record its training data; pass the data explicitly")
    ds = load(source, training_columns(cfg))
    return prepare(ds, cfg.window, cfg.stride, cfg.task, cfg.horizon, seed=int(cfg.training.get("seed", 0)))


def calibration_windows(cfg: ModelConfig, recipe: Recipe) -> np.ndarray:
    """Normalized calibration windows [N, T, F]."""
    from .prepare import model_inputs

    if recipe.npz:
        try:
            with np.load(recipe.npz) as z:
                if "X" not in z.files:
                    raise InputError(f"{recipe.npz}: no array 'X' (calibration windows [N, T, F])")
                X = np.asarray(z["X"], np.float32)
        except (OSError, ValueError) as ex:
            raise InputError(f"{recipe.npz}: not a readable NPZ ({ex})") from None
        if X.ndim != 3:
            raise InputError(f"{recipe.npz}: X must be windows [N, T, F], got shape {list(X.shape)}")
        if X.shape[2] != cfg.n_features:
            raise InputError(
                f"{recipe.npz}: calibration data has {X.shape[2]} features; the model expects {cfg.n_features}"
            )
        if X.shape[1] != cfg.window:
            raise InputError(f"{recipe.npz}: calibration windows have {X.shape[1]} samples; the model expects "
                             f"{cfg.window}")
        return model_inputs(cfg, X).astype(np.float32)
    prep = load_splits(cfg, recipe.data)
    w = prep.train if recipe.split == "train" else prep.val
    rng = np.random.default_rng(recipe.seed)
    n = min(recipe.windows, len(w))
    if recipe.stratify == "class" and cfg.task == "classify":
        idx = []
        classes, counts = np.unique(w.y, return_counts=True)
        for c, k in zip(classes, counts):
            take = max(1, int(round(n * k / len(w))))
            idx.extend(rng.choice(np.flatnonzero(w.y == c), size=min(take, k), replace=False))
        idx = np.array(sorted(idx))
    else:
        idx = np.sort(rng.choice(len(w), size=n, replace=False))
    return model_inputs(cfg, w.X[idx]).astype(np.float32)


def step_samples(step, X: np.ndarray, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """(x_t, state_t…) tuples the float step model sees when stepped over X from zero state; n drawn uniformly."""
    fn = step.tf_function(batch=None)
    N, T, _ = X.shape
    rng = np.random.default_rng(seed)
    pick = rng.choice(N * T, size=min(n, N * T), replace=False)
    at_t: dict[int, np.ndarray] = {}
    for p in pick:
        at_t.setdefault(int(p % T), []).append(int(p // T))
    out: dict[str, list] = {name: [] for name in step.input_names}
    state = step.zero_state(N)
    bilstm = step.cfg.arch == "bilstm"
    for t in range(T):
        feed = {"x": X[:, t]}
        if bilstm:
            feed["x_reverse"] = X[:, T - 1 - t]
        feed.update(state)
        if t in at_t:
            rows = at_t[t]
            for name in step.input_names:
                out[name].append(feed[name][rows])
        res = fn(*[np.ascontiguousarray(feed[name], np.float32) for name in step.input_names])
        state = {name: res[f"{name}_out"].numpy() for name, _ in step.states}
    return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}
