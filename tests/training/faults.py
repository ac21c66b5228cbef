"""Faults injected into real training runs (as callbacks named in Hydra overrides)."""

import os
import signal
import time
from pathlib import Path

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


class WaitForSignal(Callback):
    """At the end of training batch ``batch`` of ``epoch``: create the file ``ready``, then wait (at
    most a minute) until the test has sent a signal that Lightning received."""

    def __init__(self, epoch: int, batch: int, ready: str) -> None:
        self.epoch, self.batch, self.ready = epoch, batch, Path(ready)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            self.ready.touch()
            deadline = time.monotonic() + 60
            while not trainer.received_sigterm and time.monotonic() < deadline:
                time.sleep(0.02)


class SignalSelf(Callback):
    """Send signal ``signum`` to this process at the end of training batch ``batch`` of ``epoch``."""

    def __init__(self, epoch: int, batch: int, signum: int) -> None:
        self.epoch, self.batch, self.signum = epoch, batch, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            os.kill(os.getpid(), self.signum)


class ScaleScores(Callback):
    """Multiply the score layer's weights by ``factor`` at the end of training batch ``batch`` of
    ``epoch`` (after its optimizer step): a diverged update, as the next loss will show."""

    def __init__(self, epoch: int, batch: int, factor: float) -> None:
        self.epoch, self.batch, self.factor = epoch, batch, factor

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            with torch.no_grad():
                pl_module.net.head.score_fr.weight.mul_(self.factor)


class Stall(Callback):
    """At the start of training batch ``batch`` of ``epoch``: create the file ``ready``, then sleep
    a minute (a long batch, during which the test sends its signals)."""

    def __init__(self, epoch: int, batch: int, ready: str) -> None:
        self.epoch, self.batch, self.ready = epoch, batch, Path(ready)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            self.ready.touch()
            time.sleep(60)



class WaitForSignalHandled(Callback):
    """At the end of training batch ``batch`` of ``epoch``: create the file ``ready``, then wait (at
    most a minute) until signal ``signum`` arrives; the handler installed before this one (the
    run's own) handles it too."""

    def __init__(self, epoch: int, batch: int, ready: str, signum: int) -> None:
        self.epoch, self.batch, self.ready, self.signum = epoch, batch, Path(ready), signum
        self.arrived = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) != (self.epoch, self.batch):
            return
        handler = signal.getsignal(self.signum)

        def note(signum, frame):
            self.arrived = True
            handler(signum, frame)

        signal.signal(self.signum, note)
        self.ready.touch()
        deadline = time.monotonic() + 60
        while not self.arrived and time.monotonic() < deadline:
            time.sleep(0.02)
        signal.signal(self.signum, handler)
