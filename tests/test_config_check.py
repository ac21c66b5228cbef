"""Config mistakes stop before anything is built, naming the key, the value and a fix."""

import subprocess
import sys

import pytest

from fcn_lit.config_check import ConfigError
from fcn_lit.training.train import train
from runconfig import REPO

MISTAKES = {
    "data.batch_size=0": "data.batch_size=0: must be a whole number of images >= 1, e.g. data.batch_size=8",
    "data.crop_size=-5": "data.crop_size=-5: must be a crop size in pixels >= 1, or [height, width], e.g. data.crop_size=320",
    "data.num_workers=-1": "data.num_workers=-1: must be a whole number >= 0",
    "model.optimizer.lr=-1": "model.optimizer.lr=-1: must be a learning rate >= 0, e.g. model.optimizer.lr=1e-4",
    "trainer.max_epochs=abc": "trainer.max_epochs='abc': must be a whole number of epochs (-1: no limit), e.g. trainer.max_epochs=10",
    "data.crop_size=[320,0]": "data.crop_size=[320, 0]: must be",
}


@pytest.mark.parametrize("override", MISTAKES)
def test_mistake_is_named_before_anything_is_built(tiny_cfg, tmp_path, override):
    with pytest.raises(ConfigError) as raised:
        train(tiny_cfg(override))
    assert MISTAKES[override] in str(raised.value)
    assert not (tmp_path / "run").exists() and not (tmp_path / "synthetic").exists()  # no run dir, no data


def test_every_mistake_is_listed_at_once(tiny_cfg):
    with pytest.raises(ConfigError) as raised:
        train(tiny_cfg("data.batch_size=0", "model.optimizer.lr=-1"))
    assert "data.batch_size=0:" in str(raised.value) and "model.optimizer.lr=-1:" in str(raised.value)


def test_settings_that_work_pass(tiny_cfg):
    from fcn_lit.config_check import check_config

    check_config(tiny_cfg("data.crop_size=[32,48]", "trainer.max_epochs=-1", "model.optimizer.lr=0", "data.num_workers=0"))


def test_command_line_exits_non_zero_with_the_message(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "train.py"), "trainer.max_epochs=abc", "data.batch_size=0",
                           f"hydra.run.dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path / 'data'}"],
                          cwd=tmp_path, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert MISTAKES["trainer.max_epochs=abc"] in done.stderr and MISTAKES["data.batch_size=0"] in done.stderr
    assert not (tmp_path / "data").exists()
