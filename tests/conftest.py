"""Shared fixtures."""

import pytest
from omegaconf import DictConfig
from runconfig import TINY, compose_config


@pytest.fixture
def tiny_cfg(tmp_path):
    """A function: extra overrides -> a tiny synthetic run config under tmp_path."""

    def make(*overrides: str, run: str = "run") -> DictConfig:
        data_root = f"data.root={tmp_path / 'synthetic'}"
        return compose_config(tmp_path / run, [*TINY, data_root, *overrides])

    return make
