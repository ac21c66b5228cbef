"""A run directory belongs to one live run (a lock), and a resume keeps what the run wrote before:
the original config.yaml and overrides.yaml stay, each resume is recorded beside them in resumes.yaml."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import filelock
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from fcn_lit.errors import UserError

LOCK_NAME = ".lock"


class RunDirectoryBusy(UserError, RuntimeError):
    """Another live process runs in this run directory."""


@contextmanager
def run_directory_lock(run_dir: Path, console: Console) -> Iterator[None]:
    """Hold ``<run_dir>/.lock`` while the run lives (global rank 0 only; other ranks share its run).

    filelock's SoftFileLock writes the holder's pid and host into the file: a second run refuses
    while that process lives; the lock of a process that is gone (killed, crashed) is taken over,
    with a note.
    """
    if rank_zero_only.rank != 0:
        yield
        return
    path = run_dir / LOCK_NAME
    lock = filelock.SoftFileLock(path, timeout=0)
    previous = _holder(path)
    try:
        lock.acquire()
    except filelock.Timeout:
        pid, host = _holder(path) or ("?", "?")
        raise RunDirectoryBusy(
            f"run directory {run_dir} is in use by process {pid} on {host} (lock file {path}): wait for that "
            "run to end, or give this one another directory (hydra.run.dir=...). If that process is gone "
            f"(its host rebooted), delete {path}"
        ) from None
    if previous and previous[0] != os.getpid():
        console.print(f"Note: took over the lock {path} of process {previous[0]} on {previous[1]}, which is no "
                      "longer running (it was killed or crashed)", soft_wrap=True)
    try:
        yield
    finally:
        lock.release()


def _holder(path: Path) -> tuple[int, str] | None:
    """(pid, host) written in a SoftFileLock file, or None."""
    try:
        pid, host = path.read_text().splitlines()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return None


def record_config(run_dir: Path, cfg: DictConfig, resumed_from: Path | None, step: int | None) -> bool:
    """Write config.yaml and overrides.yaml (the command line's) for a new run. A run resumed in its
    own directory keeps both and appends to resumes.yaml: when, from which checkpoint and step, the command
    line's overrides and every setting that differs from config.yaml. Returns True for such a resume.
    Only global rank 0 writes."""
    original = run_dir / "config.yaml"
    continues = resumed_from is not None and original.is_file()
    if rank_zero_only.rank != 0:
        return continues
    if not continues:
        OmegaConf.save(cfg, original, resolve=True)
        OmegaConf.save(OmegaConf.create(_command_line_overrides()), run_dir / "overrides.yaml")
        return False
    before = _flat(OmegaConf.to_container(OmegaConf.load(original)))
    now = _flat(OmegaConf.to_container(cfg, resolve=True))
    entry = {
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
        "checkpoint": str(resumed_from),
        "step": step,
        "overrides": _command_line_overrides(),
        "changed": {key: {"was": before.get(key), "now": now.get(key)}
                    for key in sorted(before.keys() | now.keys()) if before.get(key) != now.get(key)},
    }
    log = run_dir / "resumes.yaml"
    entries = OmegaConf.to_container(OmegaConf.load(log)) if log.is_file() else []
    tmp = log.with_name(f".{log.name}.tmp")
    OmegaConf.save(OmegaConf.create([*entries, entry]), tmp)
    os.replace(tmp, log)
    return True


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}
    return {prefix[:-1]: tree}


def _command_line_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
