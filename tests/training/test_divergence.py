"""The divergence guard on real runs: it stops an exploding loss before it turns NaN, keeps no
checkpoint written from diverged weights, and its printed advice, followed as printed, trains to
the end: start over with a lower lr when no checkpoint precedes the divergence (the issue's SGD
lr=3 quickstart), resume from the earlier checkpoint when the one resumed from is itself diverged."""

import csv
import math
import re
import shutil
from pathlib import Path

import pytest
import torch
from runconfig import compose_config

from fcn_lit.training.guards import DivergenceError
from fcn_lit.training.train import train

# The case: SGD at lr 3 without BatchNorm on the quickstart explodes within a few steps.
EXPLODING = ["experiment=quickstart", "model.optimizer.lr=3", "model.scheduler.name=fixed",
             "model.optimizer.name=sgd", "model.backbone.norm=null"]
FAST = ["trainer.max_epochs=1", "num_pictures=0", "test=false", "trainer.log_every_n_steps=1", "logger=csv",
        "~callbacks.rich_progress_bar", "+trainer.enable_progress_bar=false"]


def logged_losses(run_dir: Path) -> dict[int, float]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(file) if r.get("train/loss")}


def lr_and_ckpt(advice: str) -> list[str]:
    """The overrides the advice prints at its end (ckpt_path=..., model.optimizer.lr=...)."""
    return re.findall(r"(?:ckpt_path|model\.optimizer\.lr)=\S+", advice.rsplit(":", 1)[1])


@pytest.mark.slow
def test_an_exploding_quickstart_stops_before_nan_and_the_advice_trains_to_the_end(tmp_path):
    data = f"data.root={tmp_path / 'synthetic'}"
    overrides, attempts = [], []
    for attempt in range(3):
        run_dir = tmp_path / f"attempt{attempt}"
        cfg = compose_config(run_dir, [*EXPLODING, *FAST, data, *overrides])
        try:
            train(cfg)
        except DivergenceError as error:
            advice = str(error)
            attempts.append(advice)
            loss = float(re.search(r"train/loss is (\S+) at step", advice).group(1))
            assert math.isfinite(loss), advice  # stopped before NaN
            assert "No checkpoint precedes the divergence: start over (no ckpt_path)" in advice
            assert not list(run_dir.rglob("*.ckpt")), "a checkpoint from diverged weights was kept"
            overrides = lr_and_ckpt(advice)
            assert [o.split("=")[0] for o in overrides] == ["model.optimizer.lr"]
            continue
        break
    else:
        pytest.fail("the advice never led to a run that trains:\n" + "\n".join(attempts))
    assert attempts and "model.optimizer.lr=0.3" in attempts[0]  # a tenth of lr 3
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    steps = len(logged_losses(run_dir))
    assert last["epoch"] == 0 and last["global_step"] == steps > 0  # the whole epoch
    assert all(math.isfinite(v) for v in logged_losses(run_dir).values())
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


@pytest.mark.slow
def test_a_resume_from_a_diverged_checkpoint_names_it_and_the_earlier_one(tiny_cfg):
    common = ["num_pictures=0", "test=false", "trainer.log_every_n_steps=1", "+trainer.num_sanity_val_steps=0"]
    run_dir = Path(train(tiny_cfg("trainer.max_epochs=1", *common))["run_dir"])
    checkpoints = run_dir / "checkpoints"
    shutil.copy(checkpoints / "last.ckpt", checkpoints / "epoch0.ckpt")  # a copy kept by the user
    # Epoch 1 ends with a wild update: last.ckpt (step 8) holds weights whose next loss explodes.
    wild = ["+callbacks.wild._target_=faults.ScaleScores", "+callbacks.wild.epoch=1", "+callbacks.wild.batch=3",
            "+callbacks.wild.factor=1e4"]
    train(tiny_cfg("trainer.max_epochs=2", "ckpt_path=last", *common, *wild))
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 8

    with pytest.raises(DivergenceError) as diverged:
        train(tiny_cfg("trainer.max_epochs=3", "ckpt_path=last", *common))
    advice = str(diverged.value)
    assert "at step 8 (epoch 2)" in advice
    assert f"{checkpoints / 'last.ckpt'} holds the diverged weights (the checkpoint this run resumed from: it is itself diverged)" in advice
    assert not (checkpoints / "last.ckpt").exists() and (checkpoints / "last.ckpt.diverged").exists()
    followed = lr_and_ckpt(advice)
    earlier = Path(followed[0].removeprefix("ckpt_path="))
    assert earlier.parent == checkpoints and torch.load(earlier, weights_only=True)["global_step"] == 4
    assert followed[1] == "model.optimizer.lr=1e-05"

    train(tiny_cfg("trainer.max_epochs=3", *followed, *common))
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["global_step"] == 12
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
