"""The Lightning loop's overhead: Trainer.fit on FCNModule against a bare PyTorch loop doing the
same optimizer steps (same net, loss, optimizer, scheduler and in-memory batches), both warm.

Run: PYTHONPATH=src python benchmarks/bench_loop.py   (part of `make bench`)
"""

from __future__ import annotations

import logging
import statistics
import time
import warnings

import lightning as L
import torch
from common import device, sync
from torch.utils.data import DataLoader, TensorDataset

from fcn_lit.training.losses import segmentation_loss
from fcn_lit.training.module import FCNModule
from fcn_lit.training.optim import build_optimizer, build_scheduler

# A quarter-width batch-normalised VGG16 FCN-8s on 96x96 crops: tens of ms per step on a CPU, so
# that a per-step overhead of a millisecond shows.
MODEL = dict(
    net=dict(stride=8, alignment="aligned"),
    backbone=dict(name="vgg16", pretrained=False, width=0.25, norm="batch"),
    loss=dict(normalize=True),
    optimizer=dict(name="sgd", lr=1e-3, momentum=0.9, weight_decay=5e-4),
    scheduler=dict(name="fixed"),
    num_classes=21,
)
SETTINGS = {"full": dict(size=96, samples=64, batch=4, steps=40, warmup=5, rounds=3),
            "smoke": dict(size=48, samples=8, batch=4, steps=6, warmup=2, rounds=1)}


class StepClock(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        sync(trainer.strategy.root_device)
        self.times.append(time.perf_counter())


def steady_step(times: list[float], warmup: int) -> float:
    """Median seconds per step after ``warmup`` steps, from the times each step ended (the median
    keeps other processes' bursts on a shared machine out of it)."""
    return statistics.median(b - a for a, b in zip(times[warmup - 1 :], times[warmup:]))


def bare_loop(loader: DataLoader, steps: int, dev: torch.device) -> list[float]:
    torch.manual_seed(0)
    module = FCNModule(**MODEL).train().to(dev)
    optimizer = build_optimizer(module.net, **MODEL["optimizer"])
    scheduler = build_scheduler(optimizer, total_steps=steps, **MODEL["scheduler"])
    times: list[float] = []
    while len(times) < steps:
        for image, target in loader:
            image, target = image.to(dev), target.to(dev)
            loss = segmentation_loss(module.net(image), target, **MODEL["loss"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            sync(dev)
            times.append(time.perf_counter())
            if len(times) == steps:
                break
    return times


def lightning_loop(loader: DataLoader, steps: int, dev: torch.device) -> list[float]:
    torch.manual_seed(0)
    module = FCNModule(**MODEL)
    clock = StepClock()
    trainer = L.Trainer(
        accelerator="gpu" if dev.type == "cuda" else "cpu", devices=1, max_steps=steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
        callbacks=[clock],
    )
    trainer.fit(module, train_dataloaders=loader)
    return clock.times


def main(smoke: bool = False) -> dict[str, float]:
    s = SETTINGS["smoke" if smoke else "full"]
    dev = device()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers|LightningModule.log).*")
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(s["samples"], 3, s["size"], s["size"]),
                         torch.randint(0, 21, (s["samples"], s["size"], s["size"])))
    loader = DataLoader(data, batch_size=s["batch"], shuffle=True)
    bare, lightning = [], []
    for _ in range(s["rounds"]):  # alternate, keep the best of each: the machine is shared
        bare.append(steady_step(bare_loop(loader, s["steps"], dev), s["warmup"]))
        lightning.append(steady_step(lightning_loop(loader, s["steps"], dev), s["warmup"]))
    b, lt = min(bare), min(lightning)
    print(f"Lightning loop overhead on {dev.type}, FCN-8s VGG16 width 0.25 + BN, batch {s['batch']} at {s['size']}x{s['size']}, "
          f"{s['steps']} steps ({s['warmup']} warm-up) x {s['rounds']} rounds")
    print(f"  median step: bare PyTorch loop {b * 1e3:8.1f} ms | Trainer.fit {lt * 1e3:8.1f} ms | "
          f"overhead {100 * (lt / b - 1):+.1f}% (target <= 5%)", flush=True)
    return {"bare ms/step": b * 1e3, "lightning ms/step": lt * 1e3, "overhead %": 100 * (lt / b - 1)}


if __name__ == "__main__":
    import sys

    main(smoke="--smoke" in sys.argv)
