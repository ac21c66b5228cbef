"""One training step of a tiny FCN on a data set written on disk, through its conf/data config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runconfig import compose_config

from fcn_lit.training.train import train

# A 1/8-width trunk, one optimizer step, then test (and pictures) on the validation split.
ONE_STEP = ["data.num_workers=0", "model/backbone=vgg16_tiny", "model.net.alignment=aligned", "trainer.max_steps=1",
            "trainer.max_epochs=1", "logger=csv", "callbacks=default", "~callbacks.rich_progress_bar",
            "+trainer.enable_progress_bar=false"]


def train_one_step(run_dir: Path, data: str, root: Path, *overrides: str) -> dict[str, Any]:
    return train(compose_config(run_dir, [f"data={data}", f"data.root={root}", *ONE_STEP, *overrides]))
