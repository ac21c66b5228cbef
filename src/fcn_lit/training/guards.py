"""Stop a run whose loss is no longer finite, before a checkpoint is written from the bad state."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from fcn_lit.errors import UserError

# Below this, an lr only makes sense with the summed loss (the heavy recipes: 1e-10 ... 1e-14).
SUMMED_LOSS_LR = 1e-8


class NonFiniteLossError(UserError, RuntimeError):
    """The training loss became NaN or infinite."""


def likely_cause(lr: float, normalize: bool) -> str:
    """The usual reason a loss diverges with this learning rate and loss normalization."""
    if not normalize and lr > SUMMED_LOSS_LR:
        return (
            f"model.loss.normalize=false sums the loss over every pixel (about 1e5 per image), so "
            f"lr={lr:g} explodes: the release's heavy recipes use lr 1e-10 / 1e-12 / 1e-14 with the "
            "summed loss. Lower model.optimizer.lr, or set model.loss.normalize=true to keep lr 1e-4"
        )
    if normalize and lr <= SUMMED_LOSS_LR:
        return (
            f"lr={lr:g} is a summed-loss learning rate but model.loss.normalize=true averages the loss: "
            "the recipe and the loss do not match. Use lr about 1e-4 with the normalized loss, or "
            "model.loss.normalize=false with lr 1e-10"
        )
    return (
        f"lr={lr:g} with model.loss.normalize={str(normalize).lower()} diverged: lower "
        "model.optimizer.lr (or add model.scheduler.warmup_steps); with trainer.precision=16-mixed "
        "try bf16-mixed"
    )


class NonFiniteLossGuard(Callback):
    """Raise :class:`NonFiniteLossError` on the first training step whose loss is NaN or infinite.

    The error is raised in ``on_train_batch_end``, before the epoch ends, so no checkpoint is saved
    from the diverged weights: ``last.ckpt`` stays the last good one (no OnExceptionCheckpoint).
    """

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if not isinstance(loss, Tensor) or math.isfinite(loss.item()):
            return
        lr = pl_module.hparams.optimizer["lr"]
        normalize = pl_module.hparams.loss.get("normalize", True)
        raise NonFiniteLossError(
            f"train/loss is {loss.item()} at step {trainer.global_step} (epoch {trainer.current_epoch}). "
            f"Likely cause: {likely_cause(lr, normalize)}. The run stopped; the last good checkpoint "
            "is kept (resume with ckpt_path=last after fixing the settings)."
        )
