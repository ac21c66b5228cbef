"""Training through a real SLURM scheduler (tests/cluster/start_slurm.sh starts a one-node cluster):
a job that gets SIGUSR1 mid-epoch, as `#SBATCH --signal=USR1@90` sends it before the time limit,
is requeued by Lightning, resumes from its hpc checkpoint and ends with the steps, weights and
metrics of a run that was never stopped; the launcher follows it with squeue, the cluster keeping
no accounting. (The README's CPU-partition sweep runs in
tests/test_readme_commands.py, marked `slurm` too.)"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from omegaconf import OmegaConf
from runconfig import REPO, TINY, compose_config

from fcn_lit.data.synthetic import generate_synthetic
from fcn_lit.training.train import train

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

EXACT = ["trainer.max_epochs=3", "trainer.deterministic=true", "num_pictures=0"]
# One CPU per job: the test cluster may have two.
ON_THE_CLUSTER = ["hydra/launcher=slurm", "trainer=cpu", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2",
                  "hydra.launcher.timeout_min=10"]


def squeue(job: str) -> str:
    return subprocess.run(["squeue", "--noheader", "--jobs", job, "--format=%T %r"], capture_output=True, text=True).stdout.strip()


def wait_for(condition, what: str, process: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the sweep ended (exit {process.returncode}) before {what}:\n{process.stdout.read()[-4000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_sigusr1_requeues_the_job_which_resumes_to_the_result_of_a_run_never_stopped(tmp_path):
    data = generate_synthetic(tmp_path / "synthetic", seed=0, num_train=16, num_val=4, size=48)
    overrides = [*TINY, f"data.root={data}", *EXACT]
    ready, sweep = tmp_path / "ready", tmp_path / "sweep"
    pause = ["+callbacks.pause._target_=faults.WaitForSignalHandled", "+callbacks.pause.epoch=1",
             "+callbacks.pause.batch=0", f"+callbacks.pause.ready={ready}", f"+callbacks.pause.signum={int(signal.SIGUSR1)}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests" / "training")])}
    sweep_run = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), "-m", *ON_THE_CLUSTER, *overrides, *pause, f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The run never stopped, here, while the cluster starts the job.
        whole = train(compose_config(tmp_path / "whole", overrides))

        wait_for(ready.exists, "the job reached epoch 1", sweep_run)
        (job,) = [p.name for p in (sweep / ".submitit").iterdir() if p.name.isdigit()]
        subprocess.run(["scancel", "--signal=USR1", job], check=True)
        # Requeued, SLURM holds the job for two minutes before it may start again: start it now.
        wait_for(lambda: squeue(job).startswith("PENDING"), "the job to be requeued", sweep_run)
        subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], check=True)
        out, _ = sweep_run.communicate(timeout=300)
    finally:
        if sweep_run.poll() is None:
            sweep_run.kill()
    assert sweep_run.returncode == 0, out[-4000:]
    # No accounting on this cluster: said once, no warnings at every poll of the job's state.
    assert out.count("accounting storage is disabled") == 1 and "Bypassing sacct error" not in out, out[-4000:]
    assert "submitit follows the jobs with squeue" in out

    run_dir = sweep / "0"
    log = "".join(p.read_text() for p in (sweep / ".submitit").glob("*/*.err"))
    assert "DUE TO JOB REQUEUE" in log and "Requeued SLURM job" in log
    hpc = torch.load(run_dir / "hpc_ckpt_1.ckpt", weights_only=True)
    assert (hpc["epoch"], hpc["global_step"]) == (1, 6)  # at the end of the batch after the signal's, mid-epoch
    [resume] = OmegaConf.to_container(OmegaConf.load(run_dir / "resumes.yaml"))
    assert (resume["checkpoint"], resume["step"]) == (str(run_dir / "hpc_ckpt_1.ckpt"), 6)

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"] == whole["test"] and metrics["best_val_mean_iu"] == whole["best_val_mean_iu"]
    final = [torch.load(d / "checkpoints" / "last.ckpt", weights_only=True) for d in (run_dir, tmp_path / "whole")]
    assert final[0]["global_step"] == final[1]["global_step"] == 12
    for key, value in final[1]["state_dict"].items():
        assert torch.equal(final[0]["state_dict"][key], value), key
