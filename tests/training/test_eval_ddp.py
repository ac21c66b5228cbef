"""eval.py on a checkpoint: one process and two DDP processes (gloo, an odd number of images) give
the scores of an independent numpy evaluation; pytorch-fcn state dicts are scored as imported."""

import json

import numpy as np
import pytest
import torch
from clirun import command, run
from hydra.utils import instantiate
from runconfig import compose_config

from fcn_lit.data.synthetic import generate_synthetic
from fcn_lit.inference.evaluate import evaluate
from fcn_lit.models import build_fcn
from fcn_lit.training.module import FCNModule

DATA = {"seed": 0, "num_train": 2, "num_val": 5, "size": 40}
DATA_OVERRIDES = [f"data.generator.{k}={v}" for k, v in DATA.items()] + ["data.batch_size=2"]
# The path the numpy reference takes (speed.runtime=auto may pick a faster one whose masks agree on >= 99.9% of the pixels).
EAGER_FP32 = ["speed.runtime=torch", "speed.precision=fp32"]


def numpy_scores(net, datamodule, n: int, repeat_first: bool = False) -> dict[str, float]:
    """score.py's formulas over the test split; repeat_first counts image 0 twice (DistributedSampler padding)."""
    hist = np.zeros((n, n), np.int64)
    dataset = datamodule.test_dataloader().dataset
    with torch.no_grad():
        for i in [*range(len(dataset)), *([0] if repeat_first else [])]:
            image, target = dataset[i]
            pred = net(image[None]).argmax(1)[0].numpy().ravel()
            t = target.numpy().ravel()
            keep = t < n
            hist += np.bincount(n * t[keep] + pred[keep], minlength=n * n).reshape(n, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        iu = np.diag(hist) / (hist.sum(0) + hist.sum(1) - np.diag(hist))
    return {"pixel_acc": np.diag(hist).sum() / hist.sum(), "mean_iu": np.nanmean(iu)}


def random_scores(net: torch.nn.Module) -> None:
    torch.manual_seed(0)
    for name, param in net.named_parameters():
        if "score" in name:
            param.data.normal_(0, 0.5)


@pytest.mark.slow
def test_eval_ddp_two_processes_equals_one_process(tmp_path):
    data = generate_synthetic(tmp_path / "synthetic", **DATA)
    module = FCNModule(net={"stride": 8, "alignment": "aligned"},
                       backbone={"name": "vgg16", "pretrained": False, "width": 0.125, "norm": "batch"},
                       loss={}, optimizer={"lr": 0.0}, scheduler={}, num_classes=6,
                       class_names=(data / "class_names.txt").read_text().split())
    random_scores(module.net)
    ckpt = tmp_path / "model.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, ckpt)

    common = [f"ckpt_path={ckpt}", f"data.root={data}", *DATA_OVERRIDES, "trainer.max_epochs=1", *EAGER_FP32]
    run(command("eval.py", tmp_path / "one", *common), tmp_path)
    out = run(command("eval.py", tmp_path / "ddp", *common, "trainer=ddp_cpu"), tmp_path)
    assert "Starting with 2 processes" in out
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())["test"]
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())["test"]
    assert ddp == one

    datamodule = instantiate(compose_config(tmp_path / "x", [f"data.root={data}", *DATA_OVERRIDES]).data)
    module.eval()
    expected = numpy_scores(module.net, datamodule, 6)
    assert one["mean_iu"] == pytest.approx(expected["mean_iu"], abs=1e-12)
    assert one["pixel_acc"] == pytest.approx(expected["pixel_acc"], abs=1e-12)
    padded = numpy_scores(module.net, datamodule, 6, repeat_first=True)
    assert padded["mean_iu"] != pytest.approx(expected["mean_iu"], abs=1e-9)  # padding would show


@pytest.mark.slow
def test_eval_scores_a_pytorch_fcn_state_dict(tmp_path, capsys):
    data = generate_synthetic(tmp_path / "synthetic", **DATA)
    net = build_fcn("vgg16", 16, 6, width=0.125, alignment="caffe")
    random_scores(net)
    # The port's names: conv1_1 ... fc7, score_fr, score_pool4, upscore2, upscore16.
    port = {k.split(".", 2)[-1] if k.startswith("trunk.") else k.split(".", 1)[-1]: v for k, v in net.state_dict().items()}
    torch.save(port, tmp_path / "fcn16s.pth")

    cfg = compose_config(tmp_path / "eval", [f"ckpt_path={tmp_path / 'fcn16s.pth'}", f"data.root={data}",
                                              *DATA_OVERRIDES, *EAGER_FP32], config_name="eval")
    results = evaluate(cfg)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(results))

    datamodule = instantiate(compose_config(tmp_path / "x", [f"data.root={data}", *DATA_OVERRIDES,
                                                             "data.normalization=caffe"]).data)
    net.eval()
    expected = numpy_scores(net, datamodule, 6)
    assert saved["test"]["mean_iu"] == pytest.approx(expected["mean_iu"], abs=1e-12)
    out = capsys.readouterr().out
    assert "normalization=caffe" in out and "per-class IU" in out


@pytest.mark.slow
def test_ddp_fit_validation_equals_one_process(tmp_path):
    """Validation inside trainer.fit under 2 gloo processes scores the same as one process: lr 0 keeps
    both nets equal (no BatchNorm statistics to drift), random score layers make the scores non-trivial."""
    data = generate_synthetic(tmp_path / "synthetic", **DATA)
    backbone = {"name": "vgg16", "pretrained": False, "width": 0.125, "norm": None}
    module = FCNModule(net={"stride": 8, "alignment": "aligned"}, backbone=backbone, loss={},
                       optimizer={"lr": 0.0}, scheduler={}, num_classes=6)
    random_scores(module.net)
    ckpt = tmp_path / "start.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, ckpt)

    common = [f"data.root={data}", *DATA_OVERRIDES, "model/backbone=vgg16_tiny", "model.backbone.norm=null",
              "model.net.alignment=aligned", f"+init_from={ckpt}", "model.optimizer.lr=0.0",
              "trainer.max_epochs=2", "num_pictures=0", "~callbacks.rich_progress_bar"]
    run(command("train.py", tmp_path / "one", *common), tmp_path)
    out = run(command("train.py", tmp_path / "ddp", *common, "trainer=ddp_cpu"), tmp_path)
    assert "Starting with 2 processes" in out
    one, ddp = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("one", "ddp"))
    assert ddp["best_val_mean_iu"] == one["best_val_mean_iu"]
    assert ddp["test"] == one["test"]

    module.eval()
    datamodule = instantiate(compose_config(tmp_path / "x", [f"data.root={data}", *DATA_OVERRIDES]).data)
    assert one["best_val_mean_iu"] == pytest.approx(numpy_scores(module.net, datamodule, 6)["mean_iu"], abs=1e-12)
