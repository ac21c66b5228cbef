"""A tiny 3-backbone sweep (`python train.py -m`), logged to W&B offline, shared by these tests."""

from pathlib import Path

import pytest
from sweeprun import BACKBONES, TINY_SWEEP, run_script


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory) -> Path:
    """The multirun directory of `train.py -m model/backbone=alexnet,vgg16,googlenet logger=wandb`."""
    tmp = tmp_path_factory.mktemp("sweep")
    sweep_dir = tmp / "backbones"
    run_script(
        "train.py", "-m", f"model/backbone={','.join(BACKBONES)}", *TINY_SWEEP,
        f"data.root={tmp / 'synthetic'}", "logger=wandb", f"hydra.sweep.dir={sweep_dir}",
        env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"},
    )
    return sweep_dir
