"""A small trained-looking checkpoint in a run directory, as train.py leaves it."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from random_weights import randomize
from runconfig import TINY, compose_config

CLASSES = ["background", "disk", "box", "ring"]


@pytest.fixture
def run_checkpoint(tmp_path):
    """(checkpoint path, module): a tiny FCN-8s with random weights saved like a Lightning
    checkpoint, the run's config.yaml two levels up saying data.normalization=null (the weights')."""
    cfg = compose_config(tmp_path / "run", [*TINY, "model.net.alignment=caffe"])
    module = instantiate(cfg.model, num_classes=len(CLASSES), class_names=CLASSES).eval()
    randomize(module.net)
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, ckpt)
    OmegaConf.save(cfg, tmp_path / "run" / "config.yaml", resolve=True)
    return ckpt, module
