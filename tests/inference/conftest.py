"""A small trained-looking checkpoint in a run directory, as train.py leaves it."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from runconfig import TINY, compose_config

CLASSES = ["background", "disk", "box", "ring"]


def randomize(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random trainable filters, scaled by fan-in so activations stay near 1 (score layers start at
    zero, which would predict class 0 only); biases, norms and the bilinear upsampling stay."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad and p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=generator) * p[0].numel() ** -0.5)
    return net


@pytest.fixture
def run_checkpoint(tmp_path):
    """(checkpoint path, module): a tiny FCN-8s with random weights saved like a Lightning
    checkpoint, the run's config.yaml two levels up saying data.normalization=imagenet."""
    cfg = compose_config(tmp_path / "run", [*TINY, "model.net.alignment=caffe"])
    module = instantiate(cfg.model, num_classes=len(CLASSES), class_names=CLASSES).eval()
    randomize(module.net)
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, ckpt)
    OmegaConf.save(cfg, tmp_path / "run" / "config.yaml", resolve=True)
    return ckpt, module
