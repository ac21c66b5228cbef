"""The paper recipes' schedules and pipelines, run tiny: validation and checkpoints every N optimizer
steps across epochs (the release's solve.py loops), and the NYUDv2 RGB-HHA pipeline in one command."""

import sys
from pathlib import Path

import lightning as L
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from ondisk import write_nyud, write_siftflow  # noqa: E402
from runconfig import compose_config  # noqa: E402

from fcn_lit.training.staged import train_staged  # noqa: E402
from fcn_lit.training.train import train  # noqa: E402

FAST = ["num_pictures=0", "+trainer.num_sanity_val_steps=0", "data=synthetic", "trainer=cpu"]


class ValidationSteps(L.Callback):
    """Records the optimizer step of every validation run inside fit."""

    steps: list[int] = []

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "fit":
            ValidationSteps.steps.append(trainer.global_step)


@pytest.mark.slow
def test_recipes_validate_and_checkpoint_every_n_optimizer_steps_across_epochs(tiny_cfg):
    """The CVPR recipe (accumulation 20, every 4000 steps) scaled down: 2 batches per step, every 3
    steps, 8 images a epoch = 4 steps: validations at steps 3 and 6 (the second in epoch 1),
    none at epoch ends or at the last step (7); last.ckpt written at step 6."""
    ValidationSteps.steps = []
    cfg = tiny_cfg("experiment=voc_fcn32s_vgg16_cvpr", *FAST, "data.batch_size=1", "data.generator.num_train=8",
                   "trainer.accumulate_grad_batches=2", "val_every_n_steps=3", "trainer.max_steps=7",
                   "trainer.max_epochs=null", "test=false",
                   f"+callbacks.record._target_={__name__}.ValidationSteps")
    assert (cfg.trainer.val_check_interval, cfg.trainer.check_val_every_n_epoch) == (6, None)
    train(cfg)
    assert ValidationSteps.steps == [3, 6]
    last = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["global_step"], last["epoch"]) == (6, 1)


def params(checkpoint: str, prefix: str) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    return {k[len(prefix):]: v for k, v in state.items()
            if k.startswith(prefix) and "running" not in k and "batches" not in k}


@pytest.mark.slow
def test_nyud_rgbhha_pipeline_fuses_the_trained_rgb_and_hha_streams(tmp_path):
    """experiment=nyud_fcn32s_rgbhha_staged: RGB and HHA FCN-32s, then RGB-HHA with each stream
    transplanted from its stage's best checkpoint (at lr 0 here, so the streams stay those weights)."""
    write_nyud(tmp_path / "nyud", {"trainval": ["1", "2"], "test": ["3"]})
    cfg = compose_config(tmp_path / "run", [
        "experiment=nyud_fcn32s_rgbhha_staged", *FAST[:2], "trainer=cpu", "model/backbone=vgg16_tiny",
        "model.backbone.norm=null",
        "model.net.alignment=aligned", f"data.root={tmp_path / 'nyud'}", "data.num_workers=0",
        "~callbacks.rich_progress_bar", "+trainer.enable_progress_bar=false", "test=false", "val_every_n_steps=1",
        "stages.0.max_steps=2", "stages.1.max_steps=2", "stages.2.max_steps=1",
        "stages.0.lr=1e-3", "stages.1.lr=1e-3", "stages.2.lr=0.0"])
    summary = train_staged(cfg, train)
    stages = summary["stages"]
    assert list(stages) == ["rgb", "hha", "rgbhha"]
    run_dir = Path(cfg.paths.output_dir)
    for name in stages:
        assert Path(stages[name]["checkpoint"]).parent == run_dir / name / "checkpoints"
    fused = stages["rgbhha"]["checkpoint"]
    for stream, stage in (("color", "rgb"), ("hha", "hha")):
        single = params(stages[stage]["checkpoint"], "net.")
        transplanted = params(fused, f"net.streams.{stream}.")
        assert single.keys() == transplanted.keys() and "trunk.stride8.conv1_1.weight" in single
        for key, value in single.items():
            assert torch.equal(transplanted[key], value), (stream, key)
    rgb, hha = params(stages["rgb"]["checkpoint"], "net."), params(stages["hha"]["checkpoint"], "net.")
    assert not torch.equal(rgb["head.score_fr.weight"], hha["head.score_fr.weight"])  # two sources


@pytest.mark.slow
def test_siftflow_pipeline_trains_32s_16s_8s_each_from_the_previous(tmp_path):
    """experiment=siftflow_fcn8s_staged: both heads carried from stage to stage (16s and 8s at lr 0
    here: their shared layers stay the previous stage's best)."""
    write_siftflow(tmp_path / "siftflow", {"trainval": ["a", "b"], "test": ["c"]})
    cfg = compose_config(tmp_path / "run", [
        "experiment=siftflow_fcn8s_staged", *FAST[:2], "trainer=cpu", "model/backbone=vgg16_tiny",
        "model.backbone.norm=null", "model.net.alignment=aligned", f"data.root={tmp_path / 'siftflow'}",
        "data.num_workers=0", "~callbacks.rich_progress_bar", "+trainer.enable_progress_bar=false", "test=false",
        "val_every_n_steps=1", "stages.0.max_steps=2", "stages.1.max_steps=1", "stages.2.max_steps=1",
        "stages.0.lr=1e-3", "stages.1.lr=0.0", "stages.2.lr=0.0"])
    stages = train_staged(cfg, train)["stages"]
    assert list(stages) == ["fcn32s", "fcn16s", "fcn8s"]
    fcn32s, fcn16s, fcn8s = (params(stages[s]["checkpoint"], "net.") for s in stages)
    for head in ("semantic", "geometric"):
        assert fcn32s[f"heads.{head}.score_fr.weight"].any()  # trained in the 32s stage, then carried
        assert not fcn16s[f"heads.{head}.score_pool4.weight"].any() and not fcn8s[f"heads.{head}.score_pool3.weight"].any()
    for earlier, later in ((fcn32s, fcn16s), (fcn16s, fcn8s)):
        shared = earlier.keys() & later.keys()
        assert "trunk.stride8.conv1_1.weight" in shared
        for key in shared:
            assert torch.equal(later[key], earlier[key]), key
