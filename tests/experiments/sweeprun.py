"""The tiny sweep's settings and a runner for repository scripts, shared by tests/experiments
(a module of its own: `from conftest import ...` resolves to whichever conftest was imported first)."""

import os
import subprocess
import sys

from runconfig import REPO

BACKBONES = ("alexnet", "vgg16", "googlenet")

# 1/16-width trunks from scratch on 48x48 synthetic images: seconds per job on a CPU.
TINY_SWEEP = [
    "model=fcn32s",
    "model.backbone.width=0.0625",
    "model.backbone.pretrained=false",
    "model.backbone.norm=batch",
    "model.net.alignment=aligned",
    "model.optimizer.name=adamw",
    "model.optimizer.lr=3e-3",
    "data.generator.num_train=8",
    "data.generator.num_val=4",
    "data.generator.size=48",
    "data.batch_size=4",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "~callbacks.rich_progress_bar",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "num_pictures=2",
]


def run_script(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a repository script as a user would, with src/ importable."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HYDRA_FULL_ERROR": "1", **(env or {})}
    full_env.pop("WANDB_API_KEY", None)
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=full_env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result
