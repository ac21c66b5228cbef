"""An error the user can fix ends an entry point with its message and status 1, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from runconfig import REPO

from fcn_lit.cli import user_error
from fcn_lit.training.devices import DeviceError


def refuse(**_: object) -> None:
    raise DeviceError("no GPUs here")


def test_the_users_error_is_found_inside_hydras_instantiation_error():
    with pytest.raises(InstantiationException) as wrapped:
        instantiate({"_target_": f"{__name__}.refuse"})
    assert isinstance(user_error(wrapped.value), DeviceError)
    assert user_error(ValueError("a bug")) is None


def run_train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    """train.py in a fresh checkout's place (PROJECT_ROOT: its logs/ and data/), offline: an empty
    torch cache and a proxy that refuses every download."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "https_proxy", "http_proxy")}
    env.update(PYTHONPATH=str(REPO / "src"), PROJECT_ROOT=str(tmp_path), TORCH_HOME=str(tmp_path / "torch"),
               https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    return subprocess.run([sys.executable, str(REPO / "train.py"), *overrides], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_stops_with(done: subprocess.CompletedProcess, first_line: str) -> list[str]:
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-3000:]
    assert "Traceback" not in out and "Error in call to target" not in out and "HYDRA_FULL_ERROR" not in out
    lines = done.stderr.splitlines()
    assert any(line.startswith(first_line) for line in lines), done.stderr
    return lines[next(i for i, line in enumerate(lines) if line.startswith("Error: ")):]


@pytest.mark.slow
def test_python_train_py_offline_says_what_to_type(tmp_path):
    error = assert_stops_with(run_train(tmp_path), "Error: could not get torchvision's ImageNet weights for vgg16")
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth") in error[0]
    assert [line.split("#")[0].strip() for line in error[1:]] == [
        "python train.py experiment=quickstart", "python train.py model.backbone.pretrained=false"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the flagship command trains")
def test_the_flagship_command_without_gpus_stops_in_one_message(tmp_path):
    error = assert_stops_with(run_train(tmp_path, "model=fcn16s", "data=voc_sbd", "trainer.devices=4"),
                              "Error: trainer.accelerator=auto trainer.devices=4 asks for GPUs")
    assert "trainer=cpu" in error[0] and "trainer=ddp_cpu" in error[0]
