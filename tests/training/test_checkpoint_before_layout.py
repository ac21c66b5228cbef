"""A checkpoint written before the one-package-per-stage layout (by commit 703fd8f, when the
LightningModule was fcn_lit.module.FCNModule) loads in eval.py and predict.py and resumes with
ckpt_path=last. tests/fixtures/written_before_the_layout.ckpt was written by that commit's

    python train.py trainer=cpu model/backbone=vgg16_tiny model.backbone.width=0.03125
      model.net.alignment=aligned data.generator.num_train=8 data.generator.num_val=4
      data.generator.size=48 data.batch_size=4 trainer.max_epochs=1 logger=csv callbacks=default
      ~callbacks.rich_progress_bar +trainer.enable_progress_bar=false num_pictures=0
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from clirun import command, run
from PIL import Image

from runconfig import REPO

OLD = REPO / "tests" / "fixtures" / "written_before_the_layout.ckpt"
RUN = ["trainer=cpu", "model/backbone=vgg16_tiny", "model.backbone.width=0.03125", "model.net.alignment=aligned",
       "data.generator.num_train=8", "data.generator.num_val=4", "data.generator.size=48", "data.batch_size=4",
       "logger=csv", "callbacks=default", "~callbacks.rich_progress_bar", "+trainer.enable_progress_bar=false",
       "num_pictures=0"]
DATA = [o for o in RUN if o.startswith("data.")]

pytestmark = pytest.mark.slow


def test_the_fixture_is_a_resumable_checkpoint_of_the_old_layout():
    checkpoint = torch.load(OLD, weights_only=True)
    assert checkpoint["global_step"] == 2 and checkpoint["optimizer_states"]
    assert checkpoint["hyper_parameters"]["backbone"]["width"] == 0.03125


def test_eval_and_predict_take_it(tmp_path):
    out = run(command("eval.py", tmp_path / "eval", f"ckpt_path={OLD}", f"data.root={tmp_path / 'data'}", *DATA), tmp_path)
    scores = json.loads((tmp_path / "eval" / "metrics.json").read_text())["test"]
    assert 0 <= scores["mean_iu"] <= 1, out[-2000:]
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(photos / "a.jpg")
    run(command("predict.py", tmp_path / "predict", f"ckpt_path={OLD}", f"input={photos}", f"output={tmp_path / 'masks'}"),
        tmp_path)
    assert Image.open(tmp_path / "masks" / "a_mask.png").size == (56, 40)


def test_a_run_resumes_from_it_with_ckpt_path_last(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(OLD, run_dir / "checkpoints" / "last.ckpt")
    out = run(command("train.py", run_dir, *RUN, f"data.root={tmp_path / 'data'}", "trainer.max_epochs=2",
                      "ckpt_path=last"), tmp_path)
    resumed = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 1 and resumed["global_step"] == 4, out[-3000:]
