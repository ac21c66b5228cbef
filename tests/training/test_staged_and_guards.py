"""Staged fine-tuning on tiny data (3 stages, 16s from 32s's weights, rerun skips and resumes), the
NaN guard on a real run, and a bf16-mixed CPU run."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from fcn_lit.training.guards import DivergenceError
from fcn_lit.training.staged import train_staged
from fcn_lit.training.train import train

# Stage 16s learns with lr 0: its weights must stay exactly those it was given.
STAGES = "+stages=[{stride:32,lr:0.003,max_epochs:1},{stride:16,lr:0.0,max_epochs:1},{stride:8,lr:0.003,max_epochs:1}]"
FAST = ["model.optimizer.name=adamw", "num_pictures=0", "+trainer.num_sanity_val_steps=0"]


def params(checkpoint: str) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("net.") and "running" not in k and "batches" not in k}


@pytest.mark.slow
def test_staged_runs_32s_16s_8s_each_from_the_previous_best(tiny_cfg, capsys):
    cfg = tiny_cfg(STAGES, *FAST)
    summary = train_staged(cfg, train)
    run_dir = Path(cfg.paths.output_dir)

    assert json.loads((run_dir / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert list(summary["stages"]) == ["fcn32s", "fcn16s", "fcn8s"]
    for name, stage in summary["stages"].items():
        assert Path(stage["checkpoint"]).parent == run_dir / name / "checkpoints"
        assert 0 <= stage["test"]["mean_iu"] <= 1
    assert [s["lr"] for s in summary["stages"].values()] == [0.003, 0.0, 0.003]
    out = capsys.readouterr().out
    assert "staged fine-tuning" in out and "fcn16s" in out

    fcn32s, fcn16s = params(summary["stages"]["fcn32s"]["checkpoint"]), params(summary["stages"]["fcn16s"]["checkpoint"])
    shared = fcn32s.keys() & fcn16s.keys()
    assert "net.head.score_fr.weight" in shared and "net.trunk.stride8.conv1_1.weight" in shared
    for key in shared:
        assert torch.equal(fcn16s[key], fcn32s[key]), key
    assert not fcn16s["net.head.score_pool4.weight"].any()
    stage8 = (run_dir / "fcn8s" / "config.yaml").read_text()
    assert f"init_from: {summary['stages']['fcn16s']['checkpoint']}" in stage8

    # A crash in the 8s stage: its metrics are missing, its last.ckpt exists. The rerun skips 32s and
    # 16s (their files untouched) and resumes 8s from last.ckpt.
    (run_dir / "fcn8s" / "metrics.json").unlink()
    finished = {p: p.stat().st_mtime_ns for p in run_dir.glob("fcn[13][62]s/**/*") if p.is_file()}
    again = train_staged(tiny_cfg(STAGES, *FAST), train)
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    [resume] = OmegaConf.load(run_dir / "fcn8s" / "resumes.yaml")
    assert resume.checkpoint == str(run_dir / "fcn8s" / "checkpoints" / "last.ckpt")
    assert again["stages"]["fcn8s"]["test"] == summary["stages"]["fcn8s"]["test"]
    assert "finished earlier" in capsys.readouterr().out


@pytest.mark.slow
def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_cfg):
    poison = ["+callbacks.poison._target_=faults.PoisonScores", "+callbacks.poison.epoch=1",
              "+callbacks.poison.batch=1"]
    cfg = tiny_cfg("trainer.max_epochs=2", "model.loss.normalize=false", "model.optimizer.lr=1e-4", *FAST, *poison)
    with pytest.raises(DivergenceError) as error:
        train(cfg)
    message = str(error.value)
    assert "lr=0.0001" in message and "normalize=false" in message and "1e-10" in message
    last = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0 and last["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


@pytest.mark.slow
def test_bf16_mixed_precision_trains_on_cpu(tiny_cfg):
    results = train(tiny_cfg("trainer.precision=bf16-mixed", "+trainer.limit_train_batches=2", *FAST))
    assert 0 <= results["test"]["mean_iu"] <= 1
    checkpoint = torch.load(results["checkpoint"], weights_only=True)
    assert all(v.dtype != torch.bfloat16 for v in checkpoint["state_dict"].values())  # fp32 master weights
