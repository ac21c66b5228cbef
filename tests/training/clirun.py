"""Running the real entry points (train.py, eval.py) in subprocesses, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runconfig import REPO, TINY

HERE = Path(__file__).resolve().parent
TINY_DATA = {"seed": 0, "num_train": 16, "num_val": 4, "size": 48}


def command(script: str, run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(REPO / script), f"hydra.run.dir={run_dir}", *overrides]


def tiny_train(run_dir: Path, data_root: Path, *overrides: str) -> list[str]:
    return command("train.py", run_dir, *TINY, f"data.root={data_root}", *overrides)


def popen(cmd: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(HERE)])}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, expect_rc: int = 0, timeout: float = 240) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == expect_rc, f"exit {process.returncode}, expected {expect_rc}:\n{out[-4000:]}"
    return out


def run(cmd: list[str], cwd: Path, expect_rc: int = 0) -> str:
    return finish(popen(cmd, cwd), expect_rc)
