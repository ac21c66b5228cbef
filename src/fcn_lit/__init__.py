"""fcn-lit: Fully Convolutional Networks for semantic segmentation with Lightning and Hydra.

One package per stage of the data's journey; the arrows run one way, down this list:

- ``inference``: predict, evaluate, runtimes and speed options, export
- ``training``: the LightningModule, losses, optimizer, checkpoints, signals, staged runs, the train task
- ``experiments``: run directories, loggers and W&B, sweeps, scores, pictures, reports
- ``data``, ``models``, ``metrics``: data sets with their facts, trunks and heads, the paper's four metrics
- ``errors``, ``cli``, ``config_check``: the user's errors, how the entry points end on them, the
  settings checked before anything is built
"""

import importlib.abc
import importlib.machinery
import importlib.util
import math
import os
import sys
import types
import warnings
from pathlib import Path

from omegaconf import OmegaConf

__version__ = "0.1.0"

# conf/ resolves logs/ and data/ against PROJECT_ROOT: default to this checkout's root, so every
# command works from any directory.
os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[2]))
# albumentations asks PyPI for a newer release at import (up to 2 s offline, and a warning): its
# version is pinned in constraints.txt.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# conf/ multiplies with ${mul:a,b}: the recipes validate every N optimizer steps, which Lightning
# counts as N x accumulate_grad_batches training batches.
if not OmegaConf.has_resolver("mul"):
    OmegaConf.register_new_resolver("mul", lambda *factors: math.prod(factors))
# conf/hydra/launcher/slurm.yaml asks SLURM for ${gpus_per_node:accelerator,devices}: no GPUs for a
# trainer on the CPU (a CPU partition has none to give), else one per device.
if not OmegaConf.has_resolver("gpus_per_node"):
    OmegaConf.register_new_resolver(
        "gpus_per_node", lambda accelerator, devices: None if accelerator == "cpu" else devices)

# Where each module lived before the one-package-per-stage layout: the import paths, Hydra
# `_target_`s and callback paths that earlier configs and checkpoints name still resolve.
MOVED_MODULES = {
    "fcn_lit.checkpointing": "fcn_lit.training.checkpointing",
    "fcn_lit.devices": "fcn_lit.training.devices",
    "fcn_lit.guards": "fcn_lit.training.guards",
    "fcn_lit.losses": "fcn_lit.training.losses",
    "fcn_lit.module": "fcn_lit.training.module",
    "fcn_lit.optim": "fcn_lit.training.optim",
    "fcn_lit.preemption": "fcn_lit.training.preemption",
    "fcn_lit.staged": "fcn_lit.training.staged",
    "fcn_lit.tasks": "fcn_lit.training.tasks",
    "fcn_lit.train": "fcn_lit.training.train",
    "fcn_lit.evaluate": "fcn_lit.inference.evaluate",
    "fcn_lit.export": "fcn_lit.inference.export",
    "fcn_lit.predict": "fcn_lit.inference.predict",
    "fcn_lit.runtime": "fcn_lit.inference.runtime",
    "fcn_lit.speed": "fcn_lit.inference.speed",
    "fcn_lit.loggers": "fcn_lit.experiments.loggers",
    "fcn_lit.report": "fcn_lit.experiments.report",
    "fcn_lit.rundir": "fcn_lit.experiments.rundir",
    "fcn_lit.summary": "fcn_lit.experiments.scores",
    "fcn_lit.sweeps": "fcn_lit.experiments.sweeps",
    "fcn_lit.visualize": "fcn_lit.experiments.pictures",
    "fcn_lit.wandb_logging": "fcn_lit.experiments.wandb_logging",
    "fcn_lit.data.errors": "fcn_lit.errors",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as the module it became (the same object), with a warning."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name in MOVED_MODULES else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        warnings.warn(f"{spec.name} is now {MOVED_MODULES[spec.name]}", DeprecationWarning, stacklevel=2)
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        """Already executed under its new name."""


sys.meta_path.append(_MovedModuleFinder())
