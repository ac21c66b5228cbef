"""The real pipeline end to end on tiny configs: fit, test, checkpoint, metrics.json, pictures."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_lit.training.module import FCNModule
from fcn_lit.training.train import train

METRICS = ("pixel_acc", "mean_acc", "mean_iu", "fw_iu")


@pytest.mark.slow
def test_train_writes_checkpoint_metrics_and_pictures(tiny_cfg, capsys):
    cfg = tiny_cfg()
    results = train(cfg)
    run_dir = cfg.paths.output_dir

    saved = json.loads((__import__("pathlib").Path(run_dir) / "metrics.json").read_text())
    assert saved["run_dir"] == run_dir
    for key in METRICS:
        assert 0.0 <= saved["test"][key] <= 1.0
    assert set(saved["test"]["per_class_iu"]) == {"background", "disk", "box", "triangle", "ring", "ellipse"}
    assert saved == json.loads(json.dumps(results))

    # The best checkpoint loads with weights_only=True and rebuilds the same net from plain data.
    checkpoint = torch.load(saved["checkpoint"], weights_only=True)
    module = FCNModule(**checkpoint["hyper_parameters"])
    module.load_state_dict(checkpoint["state_dict"])

    picture = np.array(Image.open(saved["pictures"]))
    assert picture.ndim == 3 and picture.shape[0] > 2 * 48 and picture.shape[1] > 3 * 48

    out = capsys.readouterr().out
    assert "mean IU" in out and "per-class IU" in out
    assert out.rstrip().splitlines()[-1].endswith(run_dir) or run_dir in out.rstrip().splitlines()[-1]


@pytest.mark.slow
def test_scores_match_an_independent_evaluation(tiny_cfg):
    """The printed test mean IU equals a hand-rolled confusion matrix over the val images."""
    cfg = tiny_cfg()
    results = train(cfg)
    checkpoint = torch.load(results["checkpoint"], weights_only=True)
    module = FCNModule(**checkpoint["hyper_parameters"])
    module.load_state_dict(checkpoint["state_dict"])
    module.eval()

    from hydra.utils import instantiate

    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("test")
    n = dm.num_classes
    hist = np.zeros((n, n), np.int64)
    with torch.no_grad():
        for image, target in dm.test_dataloader():
            pred = module(image).argmax(1).numpy().ravel()
            t = target.numpy().ravel()
            keep = t < n
            hist += np.bincount(n * t[keep] + pred[keep], minlength=n * n).reshape(n, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        iu = np.diag(hist) / (hist.sum(0) + hist.sum(1) - np.diag(hist))
    assert results["test"]["mean_iu"] == pytest.approx(np.nanmean(iu), abs=1e-6)
    assert results["test"]["pixel_acc"] == pytest.approx(np.diag(hist).sum() / hist.sum(), abs=1e-6)
