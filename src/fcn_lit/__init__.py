"""fcn-lit: Fully Convolutional Networks for semantic segmentation with Lightning and Hydra."""

import math
import os
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
