"""Composing configs in tests as `python train.py <overrides>` would, into temporary run directories."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
REALDATA = REPO.parent / "shared" / "realdata"

# Small enough to train in seconds: 1/8-width trunk, 48x48 synthetic images.
TINY = [
    "trainer=cpu",
    "model/backbone=vgg16_tiny",
    "model.net.alignment=aligned",
    "data.generator.num_train=16",
    "data.generator.num_val=4",
    "data.generator.size=48",
    "data.batch_size=4",
    "trainer.max_epochs=1",
    "logger=csv",
    "callbacks=default",
    "~callbacks.rich_progress_bar",
    "+trainer.enable_progress_bar=false",
    "num_pictures=2",
]


def compose_config(run_dir: Path, overrides: list[str] = (), config_name: str = "train") -> DictConfig:
    """Compose like `python train.py <overrides>` would, with the run directory set to run_dir."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
        cfg.paths.log_dir = str(run_dir.parent / "logs")
        del cfg.hydra
    return cfg
