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


@pytest.fixture(autouse=True, scope="session")
def auto_cache_of_this_session(tmp_path_factory):
    """speed.runtime=auto remembers its choices under $XDG_CACHE_HOME: here a folder of this session
    (inherited by the commands the tests run), never the user's cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    patch.undo()
