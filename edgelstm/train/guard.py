"""Guards on training: numeric options that are numbers, and a loss that stays finite.

A diverging fit (data of ±1e308, `--lr nan`) used to write a model of NaN weights with exit 0. The options are
refused before any work; a non-finite loss stops the fit with one line, before anything is written.
"""

from __future__ import annotations

import math
from dataclasses import fields

from ..errors import InputError

# options that must be > 0; every other float option must be finite (their own ranges are checked in fit.py)
POSITIVE = ("learning_rate", "clip_at")


def check_numbers(opts) -> None:
    """Every float option finite; the learning rate and clipping threshold above 0; patience at least 0."""
    for f in fields(opts):
        v = getattr(opts, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            raise InputError(f"--{_flag(f.name)} must be a finite number, not {v}")
    for name in POSITIVE:
        if getattr(opts, name, 1.0) <= 0:
            raise InputError(f"--{_flag(name)} must be more than 0")
    if getattr(opts, "patience", 0) < 0:
        raise InputError("--patience must be 0 or more")


def _flag(name: str) -> str:
    return {"learning_rate": "lr"}.get(name, name.replace("_", "-"))


def finite_loss_callback(keras):
    """A Keras callback that stops the fit on the first non-finite training or validation loss."""
    from ..errors import TrainingDiverged

    class FiniteLoss(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.epoch = epoch

        def _check(self, logs, key: str, where: str) -> None:
            v = (logs or {}).get(key)
            if v is not None and not math.isfinite(float(v)):
                raise TrainingDiverged(
                    f"training diverged: the {where} is {float(v)} in epoch {self.epoch + 1}; nothing was written "
                    "(lower --lr, or look for huge values in the data)"
                )

        def on_train_batch_end(self, batch, logs=None) -> None:
            self._check(logs, "loss", "training loss")

        def on_epoch_end(self, epoch, logs=None) -> None:
            self._check(logs, "val_loss", "validation loss")

    return FiniteLoss()
