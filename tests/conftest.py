"""Shared fixtures, and the `slurm` mark: those tests need a SLURM cluster that answers."""

import contextlib
import functools
import os
import subprocess
import sys

import pytest
from omegaconf import DictConfig
from runconfig import TINY, compose_config

# absl (imported by TensorBoard and OpenVINO's converter) makes a logging handler on the sys.stderr of
# its import, and closes that stream when logging.config.dictConfig (every in-process Hydra run) shuts
# the handlers down while sys.stderr is another object. Imported under a test, that stream is pytest's
# capture file, and closing it breaks every later test of the worker; the real stderr it never closes.
with contextlib.redirect_stderr(sys.__stderr__):
    import absl.logging  # noqa: F401


@pytest.fixture
def tiny_cfg(tmp_path):
    """A function: extra overrides -> a tiny synthetic run config under tmp_path."""

    def make(*overrides: str, run: str = "run") -> DictConfig:
        data_root = f"data.root={tmp_path / 'synthetic'}"
        return compose_config(tmp_path / run, [*TINY, data_root, *overrides])

    return make


@functools.cache
def slurm_missing() -> str | None:
    """Why no SLURM cluster answers here, or None when one does (a partition is up)."""
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
        partitions = subprocess.run(["sinfo", "--noheader", "--format=%a"], capture_output=True, text=True, timeout=10)
    except OSError as error:
        return f"no SLURM client here ({error})"
    except subprocess.TimeoutExpired as error:
        return f"`{' '.join(error.cmd)}` did not answer within {error.timeout:g} s"
    if "is UP" not in ping.stdout:
        return f"slurmctld does not answer: {(ping.stdout + ping.stderr).strip()}"
    if "up" not in partitions.stdout.split():
        return f"no SLURM partition is up: {(partitions.stdout + partitions.stderr).strip()}"
    return None


def pytest_runtest_setup(item):
    if item.get_closest_marker("slurm") is None or (reason := slurm_missing()) is None:
        return
    reason += " (start one with: sudo bash tests/cluster/start_slurm.sh)"
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI runs the SLURM tests, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True, scope="session")
def auto_cache_of_this_session(tmp_path_factory):
    """speed.runtime=auto remembers its choices under $XDG_CACHE_HOME: here a folder of this session
    (inherited by the commands the tests run), never the user's cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    patch.undo()
