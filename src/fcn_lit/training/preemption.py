"""Preemption: SLURM and Kubernetes send SIGTERM (SLURM optionally SIGUSR1 first) before killing a job.

Lightning's signal connector turns SIGTERM into a ``SIGTERMException`` at the end of the current
training batch. :class:`CheckpointOnSignal` writes ``last.ckpt`` at that step (atomically, through
fcn_lit.training.checkpointing.AtomicCheckpointIO) and makes the process exit with 128 + the signal number;
``ckpt_path=last`` resumes mid-epoch. SIGUSR1 is handled the same way, except under SLURM with
Lightning's auto-requeue (the default when SLURM runs the job), whose own SIGUSR1 handler saves
``hpc_ckpt_<n>.ckpt`` and requeues the job; the requeued job resumes from it.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class CheckpointOnSignal(Callback):
    """Save ``<dirpath>/<filename>.ckpt`` when a fit is stopped by SIGTERM or SIGUSR1."""

    def __init__(self, dirpath: str | Path, filename: str = "last") -> None:
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self.signum = signal.SIGTERM

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After Lightning registered its handlers: a SIGUSR1 handler there is SLURM's auto-requeue.
        # Lightning restores the previous handlers when the fit ends.
        if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGUSR1, self._as_sigterm)

    def _as_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signal.Signals(signum)
        os.kill(os.getpid(), signal.SIGTERM)  # Lightning's handler: stop after this batch, on every rank

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        where = f"Stopped by {self.signum.name} at epoch {trainer.current_epoch}, step {trainer.global_step}"
        if trainer.state.fn == TrainerFn.FITTING:
            trainer.save_checkpoint(self.path)  # the whole state (optimizer, loops): resumable
            log.warning("%s: checkpoint written to %s. Continue with ckpt_path=last and the same hydra.run.dir",
                        where, self.path)
        else:
            log.warning("%s, after training: no checkpoint written", where)
        exception.code = 128 + int(self.signum)  # Lightning's SIGTERMException would exit 0
