"""One fitted model, recurrent or rocket, behind one face: cross-validation's folds and final model and tune's final
model fit, score and write either kind the same way, so the choice of kind is made once (`fit_either`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset
from ..data.prepare import Prepared
from ..models.config import ModelConfig
from . import rocket
from .fit import Progress, TrainOptions, fit_one, predict, write_model_dir


@dataclass
class Fitted:
    cfg: ModelConfig
    prep: Prepared
    model: object  # a Keras model, or a rocket model's arrays (train/rocket.py fit)
    history: dict | None = None

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.cfg.arch == "rocket":
            return rocket.predict(self.cfg, X, self.model)
        return predict(self.model, self.cfg, X)

    def write_dir(self, out, extra_metrics: dict, extra=None, test_metrics=None, overwrite: bool = False) -> dict:
        """The model directory (fit.write_model_dir or rocket.write_model_dir); returns metrics.json's content."""
        if self.cfg.arch == "rocket":
            return rocket.write_model_dir(
                Path(out), self.cfg, self.model, self.prep, extra_metrics, extra, test_metrics, overwrite
            )
        return write_model_dir(
            Path(out), self.model, self.cfg, self.prep, self.history, extra_metrics, extra, test_metrics, overwrite
        )


def fit_either(
    ds: Dataset,
    opts: TrainOptions,
    progress: Progress | None = None,
    val: Dataset | None = None,
    test: Dataset | None = None,
    hold_out_test: bool = True,
) -> Fitted:
    """Split and fit one model of opts.arch (fit.fit_one, or rocket.fit_model for a rocket model)."""
    if opts.arch == "rocket":
        cfg, a, prep = rocket.fit_model(ds, opts, progress, val, test, hold_out_test)
        return Fitted(cfg, prep, a)
    model, cfg, prep, history = fit_one(ds, opts, progress, val, test, hold_out_test)
    return Fitted(cfg, prep, model, history)
