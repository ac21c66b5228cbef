"""The divergence guard's advice works as printed (a lower lr and ckpt_path=last), and the resumed runs
continue one history: CSV rows, TensorBoard events and the same W&B run."""

import csv
import math
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fcn_lit.training.guards import DivergenceError
from fcn_lit.training.train import train

COMMON = ["logger=wandb", "+logger.tensorboard._target_=fcn_lit.experiments.loggers.TensorBoardLogger",
          "+logger.tensorboard.save_dir=${paths.output_dir}/tensorboard", "+logger.tensorboard.version=''",
          "trainer.log_every_n_steps=1", "model.loss.normalize=false", "num_pictures=0",
          "+trainer.num_sanity_val_steps=0", "test=false"]


@pytest.mark.slow
def test_the_nan_guards_advice_works_and_the_history_continues(tiny_cfg, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = Path(train(tiny_cfg("trainer.max_epochs=1", "model.optimizer.lr=1e-9", *COMMON))["run_dir"])

    with pytest.raises(DivergenceError) as diverged:
        train(tiny_cfg("trainer.max_epochs=2", "ckpt_path=last", "model.optimizer.lr=1e35", *COMMON))
    advice = str(diverged.value)
    assert "(step 4): resume from it with a lower lr, in the same hydra.run.dir: ckpt_path=last model.optimizer.lr=1e-10" in advice

    # Exactly as printed: a lower lr, ckpt_path=last. The resumed run trains with that lr and stays finite.
    printed = advice.rsplit("hydra.run.dir: ", 1)[1].split()
    train(tiny_cfg("trainer.max_epochs=2", *printed, *COMMON))
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 8
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())

    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    losses = {int(r["step"]): float(r["train/loss"]) for r in rows if r["train/loss"]}
    assert sorted(losses) == list(range(8)) and all(math.isfinite(v) for v in losses.values())
    lrs = [(int(r["step"]), float(r["lr-SGD/weights"])) for r in rows if r["lr-SGD/weights"]]
    assert lrs == [(s, 1e-9) for s in range(4)] + [(s, 1e-10) for s in range(4, 8)]  # the diverged rows are gone

    events = list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert len(events) == 3 and len({p.parent for p in events}) == 1  # one TensorBoard run, three writers
    board = EventAccumulator(str(events[0].parent))
    board.Reload()
    assert [e.step for e in board.Scalars("train/loss")] == list(range(8))  # purge_step hid the diverged steps
    wandb_runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    # Each start's folder holds run-<run id>.wandb (the folder's name ends in "-1" after a start in the same second)
    run_ids = {record.name for run in wandb_runs for record in run.glob("run-*.wandb")}
    assert len(wandb_runs) == 3 and len(run_ids) == 1  # one run id
