"""Faults injected into real training runs (as callbacks named in Hydra overrides)."""

import os
import signal

import torch
from lightning.pytorch.callbacks import Callback


class KillSelf(Callback):
    """SIGKILL the process at the start of training batch ``batch`` of ``epoch``: no cleanup runs."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            os.kill(os.getpid(), signal.SIGKILL)


class PoisonScores(Callback):
    """Fill the score layer with inf at training batch ``batch`` of ``epoch``: the loss turns NaN."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            with torch.no_grad():
                pl_module.net.head.score_fr.weight.fill_(float("inf"))
