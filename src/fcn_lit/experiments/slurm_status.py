"""SLURM job states for the submitit launcher (``hydra/launcher=slurm``) on a cluster without
accounting: submitit asks ``sacct``, which there fails at every poll (three warning lines each
time, and a job that dies without writing its result is waited for forever). A cluster that
answers "accounting storage is disabled" is said so once, and its job states come from ``squeue``
instead: a job squeue no longer lists has ended, and submitit reads its result (or reports that
it wrote none)."""

from __future__ import annotations

import logging
import subprocess
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)

# The state of a job squeue no longer lists (it ended MinJobAge ago; without accounting nothing
# remembers how): not one of submitit's unfinished states.
ENDED = "ENDED"


def accounting_disabled() -> str | None:
    """sacct's message when this cluster keeps no accounting, else None (also where sacct is missing)."""
    try:
        probe = subprocess.run(["sacct", "--noheader", "--jobs", "1"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    message = probe.stderr.strip()
    return message if probe.returncode != 0 and "accounting storage is disabled" in message else None


def squeue_watcher() -> Any:
    """A submitit SlurmInfoWatcher that reads job states from squeue."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    class SqueueWatcher(SlurmInfoWatcher):
        def _make_command(self) -> list[str] | None:
            if not self._registered - self._finished:
                return None
            return ["squeue", "--me", "--states=all", "--noheader", "--format=%i|%T|%N"]

        def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
            text = string.decode() if isinstance(string, bytes) else string
            states = super().read_info("JobID|State|NodeList\n" + text)  # the format sacct's reader takes
            for job_id in self._registered - self._finished - states.keys():
                states[job_id] = {"JobID": job_id, "State": ENDED, "NodeList": ""}
            return states

    return SqueueWatcher(delay_s=600)


class SlurmStatus(Callback):
    """Hydra callback (conf/hydra/default.yaml): before a multirun on the submitit SLURM launcher,
    use squeue for the job states where the cluster keeps no accounting, said in one line."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not str(config.hydra.launcher.get("_target_", "")).endswith("submitit_launcher.SlurmLauncher"):
            return
        reason = accounting_disabled()
        if reason is None:
            return
        from submitit.slurm.slurm import SlurmJob

        SlurmJob.watcher = squeue_watcher()
        log.info("SLURM: %s; submitit follows the jobs with squeue", reason.splitlines()[0])
