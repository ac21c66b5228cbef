"""Splits without labelled pixels, and runs without a validation split."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_lit.data import SplitFileError
from fcn_lit.data.synthetic import generate_synthetic
from fcn_lit.training.train import train

FAST = ["model.optimizer.name=adamw", "num_pictures=0", "+trainer.limit_train_batches=2"]


def test_all_void_validation_split_finishes_with_null_scores(tiny_cfg, tmp_path):
    root = generate_synthetic(tmp_path / "synthetic", num_train=16, num_val=4, size=48)
    for mask in (root / "SegmentationClass").glob("val_*.png"):
        void = Image.open(mask)
        void.paste(255, (0, 0, *void.size))
        void.save(mask)
    cfg = tiny_cfg(*FAST)
    results = train(cfg)
    metrics = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(results))
    for key in ("pixel_acc", "mean_acc", "mean_iu", "fw_iu"):
        assert metrics["test"][key] is None, key
    assert set(metrics["test"]["per_class_iu"].values()) == {None}
    assert np.array(metrics["test"]["confusion_matrix"]).sum() == 0
    assert metrics["best_val_mean_iu"] is None



def test_empty_val_split_file_advice_works_as_printed(tiny_cfg, tmp_path):
    root = generate_synthetic(tmp_path / "synthetic", num_train=16, num_val=4, size=48)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n")
    with pytest.raises(SplitFileError) as raised:
        train(tiny_cfg(*FAST))
    message = str(raised.value)
    assert f"{root / 'ImageSets' / 'Segmentation' / 'val.txt'} is empty" in message
    advice = re.search(r"Or set (\S+) to train without validation", message).group(1)
    assert advice == "data.val_split=null"

    cfg = tiny_cfg(*FAST, advice, run="advised")
    results = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert "test" not in results and results["checkpoint"] == str(run_dir / "checkpoints" / "last.ckpt")
    trained = torch.load(results["checkpoint"], weights_only=True)
    assert trained["global_step"] == 2 and trained["epoch"] == 0
    assert json.loads((run_dir / "metrics.json").read_text())["checkpoint"] == results["checkpoint"]
