"""A release .caffemodel where a checkpoint goes: eval.py scores it with the classes of data=,
predict.py and export.py segment with it, train.py starts from it (init_from). Small files of the
release's layout (width 1/8) stand in for the 0.5 GB ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from caffe_nets import write_small_caffemodel
from hydra.utils import instantiate
from runconfig import compose_config

from fcn_lit.data import VOC
from fcn_lit.data.synthetic import generate_synthetic
from fcn_lit.inference.evaluate import evaluate
from fcn_lit.inference.export import export
from fcn_lit.models import from_caffemodel
from fcn_lit.training.module import FCNModule
from fcn_lit.inference.predict import load_predictor

DATA = {"seed": 0, "num_train": 2, "num_val": 3, "size": 40}
DATA_OVERRIDES = [f"data.generator.{k}={v}" for k, v in DATA.items()] + ["data.batch_size=1"]


def scores(net: torch.nn.Module, dataset, n: int) -> float:
    """score.py's mean IU of ``net`` over ``dataset``."""
    hist = np.zeros((n, n), np.int64)
    with torch.no_grad():
        for i in range(len(dataset)):
            image, target = dataset[i]
            pred, t = net(image[None]).argmax(1)[0].numpy().ravel(), target.numpy().ravel()
            keep = t < n
            hist += np.bincount(n * t[keep] + pred[keep], minlength=n * n).reshape(n, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.nanmean(np.diag(hist) / (hist.sum(0) + hist.sum(1) - np.diag(hist))))


def test_eval_scores_a_caffemodel_with_the_classes_of_data(tmp_path, capsys):
    data = generate_synthetic(tmp_path / "synthetic", **DATA)
    write_small_caffemodel(tmp_path / "six.caffemodel", "voc-fcn8s", classes=6)
    cfg = compose_config(tmp_path / "eval", [f"ckpt_path={tmp_path / 'six.caffemodel'}", f"data.root={data}",
                                              *DATA_OVERRIDES], config_name="eval")
    results = evaluate(cfg)
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps lines
    assert "Caffe release net FCN-8s VGG16, 6 classes at width 0.125: data.normalization=caffe" in printed
    names = (data / "class_names.txt").read_text().split()
    assert list(results["test"]["per_class_iu"]) == names  # the classes of data=, not numbers
    datamodule = instantiate(compose_config(tmp_path / "x", [f"data.root={data}", *DATA_OVERRIDES,
                                                             "data.normalization=caffe"]).data)
    datamodule.setup("test")
    expected = scores(from_caffemodel(tmp_path / "six.caffemodel"), datamodule.test_dataloader().dataset, 6)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["test"]["mean_iu"] == pytest.approx(expected, abs=1e-12)

    write_small_caffemodel(tmp_path / "voc.caffemodel", "voc-fcn32s")
    cfg = compose_config(tmp_path / "eval21", [f"ckpt_path={tmp_path / 'voc.caffemodel'}", f"data.root={data}",
                                                *DATA_OVERRIDES], config_name="eval")
    with pytest.raises(ValueError, match=r"voc.caffemodel scores \{'semantic': 21\} classes but data=synthetic has 6"):
        evaluate(cfg)


def test_predict_and_export_take_a_caffemodel(tmp_path):
    path = tmp_path / "fcn8s.caffemodel"
    write_small_caffemodel(path, "voc-fcn8s")
    predictor = load_predictor(path)
    assert predictor.class_names[15] == "person" and len(predictor.class_names) == 21  # VOC's, the release's data
    assert predictor.normalization.preprocessing.name == "caffe"
    assert dict(predictor.normalization.caffe_means) == VOC.caffe_means
    x = torch.randn(1, 3, 37, 45) * 50
    with torch.no_grad():
        expected = from_caffemodel(path)(x)
        torch.testing.assert_close(predictor.net(x), expected, rtol=0, atol=0)
        (traced,) = export(path, tmp_path / "fcn8s", formats=("torchscript",), example_size=32)
        torch.testing.assert_close(torch.jit.load(str(traced))(x), expected, rtol=1e-5, atol=1e-5)


def test_training_starts_from_a_caffemodel(tmp_path):
    path = tmp_path / "fcn16s.caffemodel"
    write_small_caffemodel(path, "voc-fcn16s")
    module = FCNModule(net={"stride": 8, "alignment": "caffe"},
                       backbone={"name": "vgg16", "weights": "caffe", "pretrained": False, "width": 0.125},
                       loss={}, optimizer={"lr": 1e-10}, scheduler={}, num_classes=21)
    module.transplant_from(path)  # FCN-16s -> FCN-8s, as the release's voc-fcn8s/solve.py
    release = from_caffemodel(path).state_dict()
    mine = module.net.state_dict()
    shared = release.keys() & mine.keys()  # all but FCN-16s's upscore16, which FCN-8s has not
    assert shared == release.keys() - {"head.upscore16.weight"}
    assert all(torch.equal(mine[k], release[k]) for k in shared)
    assert not mine["head.score_pool3.weight"].any()  # the new skip starts at zero
