"""Preemption as a cluster does it, and Ctrl-C: a real signal mid-epoch writes last.ckpt and exits
non-zero; a second process (this one) refuses the busy run directory; `ckpt_path=last` with a new lr
resumes mid-epoch with that lr, keeping the logs and the original config; Ctrl-C prints the command
that resumes, which finishes the run, and a second Ctrl-C stops at once; a run stopped mid-epoch
resumes to the uninterrupted run's weights."""

import csv
import logging
import shlex
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from clirun import TINY_DATA, finish, popen, run, tiny_train
from omegaconf import OmegaConf
from runconfig import REPO

from fcn_lit.data.synthetic import generate_synthetic
from fcn_lit.experiments.rundir import RunDirectoryBusy
from fcn_lit.training.train import resume_checkpoint, train

SETTINGS = ["trainer.max_epochs=2", "num_pictures=0", "trainer.log_every_n_steps=1", "logger=many"]


def start_and_wait(run_dir: Path, data: Path, cwd: Path, *overrides: str, fault: str = "WaitForSignal"):
    """A tiny run that stops after batch 1 of epoch 1 (step 6 of 8) until it gets a signal (``Stall``:
    stops at the start of that batch, for a minute)."""
    ready = cwd / "ready"
    wait = [f"+callbacks.wait._target_=faults.{fault}", "+callbacks.wait.epoch=1",
            "+callbacks.wait.batch=1", f"+callbacks.wait.ready={ready}"]
    process = popen(tiny_train(run_dir, data, *SETTINGS, *wait, *overrides), cwd)
    deadline = time.monotonic() + 240
    while not ready.exists():
        assert process.poll() is None, finish(process)
        assert time.monotonic() < deadline, "the run never reached epoch 1, batch 1"
        time.sleep(0.1)
    return process


def snapshot(run_dir: Path) -> dict[Path, bytes]:
    """The run's files but Hydra's job log."""
    return {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.suffix != ".log"}


def rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_sigterm_mid_epoch_checkpoints_refuses_a_second_run_and_resumes_with_the_new_lr(tmp_path, tiny_cfg, caplog):
    data = generate_synthetic(tmp_path / "synthetic", **TINY_DATA)
    run_dir = tmp_path / "run"
    first = start_and_wait(run_dir, data, tmp_path)

    # A second process (this one) refuses the directory while the first is alive, and changes none of its files.
    config = (run_dir / "config.yaml").read_bytes()
    files = snapshot(run_dir)
    with pytest.raises(RunDirectoryBusy, match=f"is in use by process {first.pid}") as busy:
        train(tiny_cfg(*SETTINGS))
    assert str(run_dir / ".lock") in str(busy.value) and "hydra.run.dir" in str(busy.value)
    assert snapshot(run_dir) == files

    first.send_signal(signal.SIGTERM)
    out = finish(first, expect_rc=128 + signal.SIGTERM)
    assert "Stopped by SIGTERM at epoch 1, step 6" in out
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (1, 6)  # mid-epoch: 2 of the epoch's 4 batches
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / ".lock").exists()
    assert not (run_dir / "metrics.json").exists()
    before = rows(run_dir)

    with caplog.at_level(logging.INFO):
        train(tiny_cfg(*SETTINGS, "ckpt_path=last", "model.optimizer.lr=0.0005"))
    assert "weights lr: 0.0001 -> 0.0005" in caplog.text  # the config's lr, not the checkpoint's, and it says so
    final = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert (final["epoch"], final["global_step"]) == (1, 8)
    assert (run_dir / "metrics.json").exists()

    # The log continues: the first run's rows stay, the resumed run adds steps 6 and 7 with its lr.
    after = rows(run_dir)
    assert [{key: row[key] for key in before[0]} for row in after[: len(before)]] == before
    losses = [int(r["step"]) for r in after if r["train/loss"]]
    assert losses == list(range(8))
    lrs = {int(r["step"]): float(r["lr-SGD/weights"]) for r in after if r["lr-SGD/weights"]}
    assert lrs == {**{s: 1e-4 for s in range(6)}, 6: 5e-4, 7: 5e-4}
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) >= 2

    # config.yaml and overrides.yaml are the original run's; the resume is recorded beside them.
    assert (run_dir / "config.yaml").read_bytes() == config
    assert "+callbacks.wait.epoch=1" in OmegaConf.load(run_dir / "overrides.yaml")
    assert not (run_dir / ".hydra").exists()
    [resume] = OmegaConf.to_container(OmegaConf.load(run_dir / "resumes.yaml"))
    assert resume["step"] == 6 and resume["checkpoint"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert {"ckpt_path=last", "model.optimizer.lr=0.0005"} <= set(resume["overrides"])
    assert resume["changed"]["model.optimizer.lr"] == {"was": 1e-4, "now": 5e-4}


@pytest.mark.slow
def test_sigusr1_outside_slurm_checkpoints_and_exits_nonzero(tiny_cfg, caplog):
    signal_self = ["+callbacks.signal._target_=faults.SignalSelf", "+callbacks.signal.epoch=0",
                   "+callbacks.signal.batch=1", f"+callbacks.signal.signum={int(signal.SIGUSR1)}"]
    cfg = tiny_cfg("num_pictures=0", "+trainer.num_sanity_val_steps=0", *signal_self)
    with pytest.raises(SystemExit) as stopped, caplog.at_level(logging.WARNING):
        train(cfg)
    assert stopped.value.code == 128 + signal.SIGUSR1
    assert "Stopped by SIGUSR1 at epoch 0, step 2: checkpoint written to" in caplog.text
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # Lightning restored the handlers


def test_a_requeued_slurm_job_continues_from_its_newest_hpc_checkpoint(tmp_path, monkeypatch):
    for n in (1, 2, 10):
        (tmp_path / f"hpc_ckpt_{n}.ckpt").touch()
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    assert resume_checkpoint(None, tmp_path) is None  # outside SLURM, no ckpt_path: a new run
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "fcn")
    assert resume_checkpoint(None, tmp_path) == tmp_path / "hpc_ckpt_10.ckpt"
    assert resume_checkpoint("last", tmp_path) is None  # ckpt_path wins


@pytest.mark.slow
def test_ctrl_c_finishes_the_batch_keeps_its_step_skips_the_test_and_prints_the_resume_command(tmp_path):
    data = generate_synthetic(tmp_path / "synthetic", **TINY_DATA)
    run_dir = tmp_path / "run"
    first = start_and_wait(run_dir, data, tmp_path)
    first.send_signal(signal.SIGINT)
    out = finish(first, expect_rc=128 + signal.SIGINT)
    assert "Stopped by SIGINT at epoch 1, step 6" in out
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (1, 6)
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / "metrics.json").exists()  # no test stage
    assert "Testing" not in out and "test/mean_iu" not in out

    # The printed command, run as printed from the checkout, finishes the run.
    printed = " ".join(out.split("Continue with: ", 1)[1].splitlines()[0].split())
    argv = shlex.split(printed)
    assert argv[:2] == ["python", "train.py"] and argv[-2:] == [f"hydra.run.dir={run_dir}", "ckpt_path=last"]
    run([sys.executable, *argv[1:]], REPO)
    final = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == 8 and (run_dir / "metrics.json").exists()


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_without_a_checkpoint(tmp_path):
    data = generate_synthetic(tmp_path / "synthetic", **TINY_DATA)
    run_dir = tmp_path / "run"
    first = start_and_wait(run_dir, data, tmp_path, fault="Stall")  # in a batch that lasts a minute
    first.send_signal(signal.SIGINT)
    time.sleep(1)
    sent = time.monotonic()
    first.send_signal(signal.SIGINT)
    out = finish(first, expect_rc=1, timeout=30)
    assert time.monotonic() - sent < 20  # not after the minute-long batch
    assert "Ctrl-C again to stop at once" in out and "Stopped by SIGINT" not in out
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4  # epoch 0's


@pytest.mark.slow
def test_a_run_stopped_mid_epoch_resumes_to_the_uninterrupted_result(tiny_cfg):
    """The data order continues where the checkpoint stopped (fcn_lit.data.datamodule.ResumableLoader)."""
    exact = ["trainer.max_epochs=2", "trainer.deterministic=true", "num_pictures=0"]
    whole = train(tiny_cfg(*exact, run="whole"))
    stop = ["+callbacks.signal._target_=faults.SignalSelf", "+callbacks.signal.epoch=1",
            "+callbacks.signal.batch=1", f"+callbacks.signal.signum={int(signal.SIGTERM)}"]
    with pytest.raises(SystemExit):
        train(tiny_cfg(*exact, *stop, run="stopped"))
    stopped = Path(tiny_cfg(run="stopped").paths.output_dir)
    assert torch.load(stopped / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6
    resumed = train(tiny_cfg(*exact, "ckpt_path=last", run="stopped"))
    assert resumed["test"] == whole["test"] and resumed["best_val_mean_iu"] == whole["best_val_mean_iu"]
    final = [torch.load(Path(r["run_dir"]) / "checkpoints" / "last.ckpt", weights_only=True) for r in (whole, resumed)]
    assert final[0]["global_step"] == final[1]["global_step"] == 8
    for key, value in final[0]["state_dict"].items():
        assert torch.equal(final[1]["state_dict"][key], value), key
