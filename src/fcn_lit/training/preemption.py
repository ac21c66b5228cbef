"""Stopping a fit without losing its steps: preemption (SLURM and Kubernetes send SIGTERM, SLURM
optionally SIGUSR1 first) and Ctrl-C.

Lightning's signal connector turns SIGTERM into a ``SIGTERMException`` at the end of the current
training batch. :class:`CheckpointOnSignal` writes ``last.ckpt`` at that step (atomically, through
fcn_lit.training.checkpointing.AtomicCheckpointIO), prints the command that resumes, and makes the process
exit with 128 + the signal number; ``ckpt_path=last`` resumes mid-epoch. SIGUSR1 and the first
Ctrl-C (SIGINT) are handled the same way (a second Ctrl-C stops at once, as Lightning does, with
no checkpoint). Under SLURM with Lightning's auto-requeue (the default when SLURM runs the job),
SIGUSR1 goes to Lightning's handler, which saves ``hpc_ckpt_<n>.ckpt`` and requeues the job; it is
called at the end of the current batch, so that the requeued job resumes at a batch boundary.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


def resume_command(run_dir: Path) -> str:
    """The command line that continues this run: train.py with its overrides, the run
    directory and ``ckpt_path=last`` (in a multirun, the job's own overrides: it continues as a single run)."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in ("ckpt_path", "hydra.run.dir")]
    return shlex.join(["python", "train.py", *kept, f"hydra.run.dir={run_dir}", "ckpt_path=last"])


class CheckpointOnSignal(Callback):
    """Save ``<dirpath>/<filename>.ckpt`` when a fit is stopped by SIGTERM, SIGUSR1 or Ctrl-C."""

    def __init__(self, dirpath: str | Path, filename: str = "last") -> None:
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self.signum = signal.SIGTERM
        self._requeue: Callable[[int, FrameType | None], None] | None = None
        self._requeue_asked = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After Lightning registered its handlers: a SIGUSR1 handler there is SLURM's auto-requeue.
        # Lightning restores the previous handlers when the fit ends.
        requeue = signal.getsignal(signal.SIGUSR1)
        self._requeue = None if requeue in (signal.SIG_DFL, None) else requeue
        signal.signal(signal.SIGUSR1, self._as_sigterm if self._requeue is None else self._ask_requeue)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._as_sigterm)

    def _as_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signal.Signals(signum)
        if self.signum == signal.SIGINT:
            # The next Ctrl-C raises KeyboardInterrupt: Lightning stops at once, without a checkpoint.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            log.warning("Ctrl-C: stopping after this batch and writing %s (Ctrl-C again to stop at once)", self.path)
        os.kill(os.getpid(), signal.SIGTERM)  # Lightning's handler: stop after this batch, on every rank

    def _ask_requeue(self, signum: int, frame: FrameType | None) -> None:
        self._requeue_asked = True

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if self._requeue is None:
            return
        # Every rank at the same batch (the signal may reach them a batch apart): the save is collective.
        if trainer.strategy.reduce_boolean_decision(self._requeue_asked, all=False):
            self._requeue_asked = False
            # Lightning's auto-requeue: hpc_ckpt_<n>.ckpt at this batch boundary, then `scontrol requeue`
            # (SLURM then stops this job with SIGTERM and starts it again).
            self._requeue(signal.SIGUSR1, None)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        where = f"Stopped by {self.signum.name} at epoch {trainer.current_epoch}, step {trainer.global_step}"
        if trainer.state.fn == TrainerFn.FITTING:
            trainer.save_checkpoint(self.path)  # the whole state (optimizer, loops): resumable
            log.warning("%s: checkpoint written to %s. Continue with: %s", where, self.path,
                        resume_command(Path(trainer.default_root_dir)))
        else:
            log.warning("%s, after training: no checkpoint written", where)
        exception.code = 128 + int(self.signum)  # Lightning's SIGTERMException would exit 0
