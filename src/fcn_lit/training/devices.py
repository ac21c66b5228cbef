"""What the trainer runs on: `auto` accelerator, strategy, precision and sync BatchNorm resolved
against this machine, once, before the Lightning Trainer is built.

`python train.py model=fcn16s data=voc_sbd trainer.devices=4` on a 4-GPU machine trains on the
4 GPUs with DDP, in bf16 mixed precision where the GPUs support it (fp32 otherwise, said in the
log), with BatchNorm synchronised across the GPUs where the trunk has BatchNorm (never on CPU
processes: torch's SyncBatchNorm runs on GPUs only). Without a GPU,
asking for more than one device stops at once and names the CPU configs.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from lightning.fabric.plugins.environments import TorchElasticEnvironment
from omegaconf import DictConfig, open_dict
from torch import nn

from fcn_lit.errors import UserError
from fcn_lit.experiments.sweeps import process_count

log = logging.getLogger(__name__)

AUTO = "auto"


class DeviceError(UserError, RuntimeError):
    """The trainer asks for devices this machine does not have."""


def check_devices(trainer: DictConfig) -> None:
    """Stop at once when the trainer asks for GPUs (explicitly, or several devices on `auto`) and
    this machine has none: Lightning would otherwise start CPU processes or fail later; or when
    torchrun started another number of processes than trainer.devices x trainer.num_nodes."""
    check_torchrun_layout(trainer)
    accelerator = str(trainer.get("accelerator", AUTO))
    if accelerator not in (AUTO, "gpu", "cuda") or torch.cuda.is_available():
        return
    devices = process_count(trainer.get("devices", 1), "cpu")
    if accelerator == AUTO and devices <= 1:
        return
    asked = f"trainer.accelerator={accelerator} trainer.devices={trainer.get('devices', 1)}"
    raise DeviceError(
        f"{asked} asks for GPUs, but this machine has none (torch.cuda.is_available() is False). "
        "Train on the CPU with trainer=cpu (one process), or run the distributed code path on CPU "
        "processes with trainer=ddp_cpu (trainer.devices=2, gloo)."
    )


def check_torchrun_layout(trainer: DictConfig) -> None:
    """Under torchrun, trainer.devices must be --nproc_per_node and trainer.num_nodes --nnodes."""
    if not TorchElasticEnvironment.detect():
        return
    per_node, world = int(os.environ["LOCAL_WORLD_SIZE"]), int(os.environ["WORLD_SIZE"])
    devices = process_count(trainer.get("devices", 1), str(trainer.get("accelerator", AUTO)))
    nodes = int(trainer.get("num_nodes", 1))
    if (devices, devices * nodes) != (per_node, world):
        raise DeviceError(
            f"torchrun started {per_node} process(es) per node on {world // per_node} node(s) "
            f"(--nproc_per_node={per_node} --nnodes={world // per_node}), but the trainer asks for "
            f"trainer.devices={trainer.get('devices', 1)} x trainer.num_nodes={nodes}: set "
            f"trainer.devices={per_node} trainer.num_nodes={world // per_node}"
        )


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def bf16_supported() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_trainer(trainer: DictConfig, model: nn.Module) -> dict[str, Any]:
    """Replace the `auto` values of accelerator, strategy, precision and sync_batchnorm in
    ``trainer`` (in place) by what this machine and ``model`` call for; return the four settings
    and the device count. Explicit values are kept."""
    check_devices(trainer)
    with open_dict(trainer):
        if trainer.get("accelerator", AUTO) == AUTO:
            trainer.accelerator = "gpu" if torch.cuda.is_available() else "cpu"
        gpu = trainer.accelerator in ("gpu", "cuda")
        processes = process_count(trainer.get("devices", 1), trainer.accelerator) * int(trainer.get("num_nodes", 1))
        if trainer.get("strategy", AUTO) == AUTO and processes > 1:
            trainer.strategy = "ddp"
        if trainer.get("precision", AUTO) == AUTO:
            if gpu and bf16_supported():
                trainer.precision = "bf16-mixed"
            else:
                trainer.precision = "32-true"
                if gpu:
                    log.warning("This GPU (%s) has no bf16 support: training in fp32 (trainer.precision=32-true); "
                                "trainer.precision=16-mixed uses fp16 instead.", torch.cuda.get_device_name())
        if trainer.get("sync_batchnorm", AUTO) == AUTO:  # torch's SyncBatchNorm runs on GPUs only
            trainer.sync_batchnorm = gpu and processes > 1 and has_batchnorm(model)
    settings = {key: trainer.get(key, AUTO) for key in ("accelerator", "strategy", "precision", "sync_batchnorm")}
    log.info("Trainer: %s, %d process(es)", ", ".join(f"{k}={v}" for k, v in settings.items()), processes)
    return {**settings, "processes": processes}
