"""Multirun sweeps: what identifies a run among its siblings, and the multirun + DDP guard."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from lightning.fabric.plugins.environments import LSFEnvironment, SLURMEnvironment, TorchElasticEnvironment
from omegaconf import DictConfig

from fcn_lit.cli import in_multirun
from fcn_lit.errors import UserError

log = logging.getLogger(__name__)


def sweep_objective(results: dict[str, Any]) -> float:
    """What train.py returns to a sweeper (Optuna maximises it): the checkpoints' best validation
    mean IU, else the last validation mean IU (a run that scored no checkpoint, e.g.
    trainer.fast_dev_run=true), else NaN with a warning: Optuna records NaN as a failed trial and the
    sweep goes on (a None would stop the whole sweep)."""
    for key in ("best_val_mean_iu", "last_val_mean_iu"):
        if results.get(key) is not None:
            return float(results[key])
    log.warning("%s: no validation mean IU to return (the run never validated, or scored no pixel); "
                "returning NaN, so a sweeper fails this trial only", results.get("run_dir"))
    return float("nan")


class MultirunDDPError(UserError, RuntimeError):
    """A Hydra multirun asked Lightning to start its own DDP processes."""


def sweep_info() -> tuple[str, int] | None:
    """(sweep directory name, job number) inside a multirun job, else None."""
    if not in_multirun():
        return None
    hydra = HydraConfig.get()
    return Path(hydra.sweep.dir).name, int(hydra.job.num)


def run_identity(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """The settings a sweep varies and the paper's tables are indexed by."""
    model, data = cfg["model"], cfg["data"]
    return {
        "backbone": model["backbone"]["name"],
        "width": float(model["backbone"].get("width", 1.0)),
        "stride": int(model["net"]["stride"]),
        "at_once": bool(model["net"].get("at_once", False)),
        "data": data["name"],
        "modalities": list(data.get("modalities") or []),
        "recipe": cfg.get("task_name", "train"),
    }


def process_count(devices: Any, accelerator: str) -> int:
    """Processes per node Lightning starts for ``trainer.devices`` (an int, "2", "0,1", a list)."""
    if isinstance(devices, str) and devices.strip().isdigit():
        devices = int(devices)
    elif isinstance(devices, str) and "," in devices:
        devices = [d for d in devices.split(",") if d.strip()]
    if isinstance(devices, Sequence) and not isinstance(devices, str):
        return len(devices)
    if isinstance(devices, int) and devices > 0:
        return devices
    # "auto" or -1: every visible GPU, or one process on the CPU.
    return torch.cuda.device_count() if accelerator in ("gpu", "cuda", "auto") else 1


def _processes_created_externally() -> bool:
    return TorchElasticEnvironment.detect() or SLURMEnvironment.detect() or LSFEnvironment.detect()


def check_multirun_ddp(cfg: DictConfig) -> None:
    """Refuse a multirun in which Lightning would start the DDP processes itself.

    Lightning's DDP launcher re-runs ``sys.argv`` in each new process; under ``-m`` every rank
    re-launches the whole sweep (an open upstream issue). Processes started by torchrun or srun
    (or ``ddp_spawn``, which does not re-run the script) are fine.
    """
    if not in_multirun():
        return
    trainer = cfg.trainer
    strategy = str(trainer.get("strategy", "auto"))
    processes = process_count(trainer.get("devices", 1), str(trainer.get("accelerator", "auto")))
    processes *= int(trainer.get("num_nodes", 1))
    relaunches_script = (strategy == "auto" or strategy.startswith("ddp")) and not any(
        word in strategy for word in ("spawn", "fork", "notebook"))
    if processes > 1 and relaunches_script and not _processes_created_externally():
        raise MultirunDDPError(
            f"trainer.strategy={strategy} with {processes} processes (trainer.devices x "
            "trainer.num_nodes) cannot run under `-m`: Lightning would re-launch the whole sweep "
            "in every rank. Instead: (1) run each job with processes created by torchrun or srun, "
            "e.g. `torchrun --nproc_per_node=4 train.py trainer=ddp ...` once per setting, or "
            "`python train.py -m hydra/launcher=slurm trainer=ddp ...` (submitit starts one task "
            "per GPU with srun); (2) or use trainer.strategy=ddp_spawn; (3) or sweep with "
            "trainer.devices=1 and the joblib launcher (hydra/launcher=local_parallel)."
        )
