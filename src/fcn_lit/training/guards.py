"""Stop a run whose loss diverges, before a checkpoint is written from the bad state, and say what
to do with the checkpoints there are.

The rule (:class:`DivergenceGuard`): a training loss that is NaN or infinite, or more than
``FACTOR`` (10) times the larger of the run's first loss and the median of its last ``WINDOW`` (20)
losses, has diverged. Cross-entropy that starts at ln(classes) never legitimately climbs to ten
times that, nor to ten times where it has been lately; a learning rate that is too high gets
there within a few steps of the first jump, well before the loss overflows to NaN. The history
is saved in every checkpoint, so a resume goes on with it.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch import Tensor

from fcn_lit.errors import UserError

# Below this, an lr only makes sense with the summed loss (the heavy recipes: 1e-10 ... 1e-14).
SUMMED_LOSS_LR = 1e-8
FACTOR = 10.0
WINDOW = 20
# A checkpoint written from diverged weights is renamed <name>.ckpt.diverged: `ckpt_path=last`
# never resumes from it, and it is still there to look at.
DIVERGED_SUFFIX = ".diverged"


class DivergenceError(UserError, RuntimeError):
    """The training loss diverged (NaN, infinite, or far above its history)."""


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
        f"lr={lr:g} with model.loss.normalize={str(normalize).lower()} is too high for this run: lower "
        "model.optimizer.lr (or add model.scheduler.warmup_steps); with trainer.precision=16-mixed "
        "try bf16-mixed"
    )


def lower_lr(lr: float, normalize: bool) -> float:
    """The learning rate the advice names: the summed loss's recipe lr, else a tenth of ``lr``."""
    return 1e-10 if not normalize and lr > SUMMED_LOSS_LR else float(f"{lr / 10:.3g}")


def checkpoint_step(path: Path) -> int | None:
    """The global step a checkpoint was written at (None: unreadable, or not a training checkpoint)."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])
    except Exception:  # truncated, foreign, or not a train.py checkpoint: not one to resume from
        return None


class DivergenceGuard(Callback):
    """Raise :class:`DivergenceError` at the end of the first training batch whose loss has diverged
    (the rule is in the module docstring), before the epoch's checkpoint is written. The weights
    that gave that loss are those of global step ``s`` (the step the batch started at): every
    checkpoint of the run at step ``s`` or later holds diverged weights and is renamed
    ``*.ckpt.diverged``; the message names the newest one before ``s`` to resume from with a lower
    lr, or says to start over with a lower lr when there is none. When the diverged checkpoint is
    the one this fit resumed from (its first step diverged), it says so."""

    def __init__(self, factor: float = FACTOR, window: int = WINDOW) -> None:
        self.factor = factor
        self.first: float | None = None
        self.recent: deque[float] = deque(maxlen=window)
        self._start_step = 0

    def limit(self) -> float | None:
        """The loss above which the next one has diverged (None before the first loss)."""
        if self.first is None:
            return None
        return self.factor * max(self.first, statistics.median(self.recent))

    def state_dict(self) -> dict[str, Any]:
        return {"first": self.first, "recent": list(self.recent)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.first = state_dict["first"]
        self.recent.clear()
        self.recent.extend(state_dict["recent"])

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self._start_step = trainer.global_step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if not isinstance(loss, Tensor):
            return
        value, limit = loss.item(), self.limit()
        diverged = not math.isfinite(value) or (limit is not None and value > limit)
        # Every rank stops together (a rank that stopped alone would leave the others waiting).
        if trainer.strategy.reduce_boolean_decision(diverged, all=False):
            raise DivergenceError(self._message(trainer, pl_module, value, limit))
        if self.first is None:
            self.first = value
        self.recent.append(value)

    def _message(self, trainer: L.Trainer, pl_module: L.LightningModule, value: float, limit: float | None) -> str:
        step = self._start_step
        lr = pl_module.hparams.optimizer["lr"]
        normalize = pl_module.hparams.loss.get("normalize", True)
        rule = "" if limit is None or not math.isfinite(value) else (
            f", above {limit:.4g} (ten times the larger of the run's first loss and its recent median)")
        text = (f"train/loss is {value:.4g} at step {step} (epoch {trainer.current_epoch}){rule}: the run "
                f"diverged and stopped. Likely cause: {likely_cause(lr, normalize)}.")
        before, diverged = self._sort_checkpoints(trainer, step)
        resumed = Path(trainer.ckpt_path).resolve() if trainer.ckpt_path else None
        for path in diverged:
            itself = " (the checkpoint this run resumed from: it is itself diverged)" if path == resumed else ""
            text += f" {path} holds the diverged weights{itself}: renamed {path.name}{DIVERGED_SUFFIX}."
        new_lr = f"model.optimizer.lr={lower_lr(lr, normalize):g}"
        if before:
            path, saved_step = before
            name = "ckpt_path=last" if path.stem == "last" else f"ckpt_path={path}"
            text += (f" The checkpoint before the divergence is {path} (step {saved_step}): resume from it with a "
                     f"lower lr, in the same hydra.run.dir: {name} {new_lr}")
        else:
            text += (f" No checkpoint precedes the divergence: start over (no ckpt_path) with a lower lr: {new_lr}")
        return text

    def _sort_checkpoints(self, trainer: L.Trainer, step: int) -> tuple[tuple[Path, int] | None, list[Path]]:
        """(the newest checkpoint before ``step`` and its step, or None; the checkpoints at ``step`` or
        later, renamed here by rank 0)."""
        folders = {Path(c.dirpath) for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.dirpath}
        files = {p.resolve() for folder in folders for p in folder.glob("*.ckpt")}
        files |= {p.resolve() for p in Path(trainer.default_root_dir).glob("hpc_ckpt_*.ckpt")}
        steps = {path: checkpoint_step(path) for path in sorted(files)}
        diverged = [path for path, saved in steps.items() if saved is not None and saved >= step]
        if trainer.is_global_zero:
            for path in diverged:
                path.replace(path.with_name(path.name + DIVERGED_SUFFIX))
        earlier = [(path, saved) for path, saved in steps.items() if saved is not None and saved < step]
        # The newest; last.ckpt first among equals (what `ckpt_path=last` names).
        earlier.sort(key=lambda item: (item[1], item[0].stem == "last"))
        return (earlier[-1] if earlier else None), diverged
