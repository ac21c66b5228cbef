"""`make gpu-check` (benchmarks/gpu_check.py) without a GPU: the GPU run's composed training config,
and every step of the check run on the CPU at toy sizes (--smoke)."""

import json
import sys

import numpy as np
from PIL import Image
from runconfig import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check  # noqa: E402
from common import compose_train  # noqa: E402


def test_the_gpu_run_composes_the_flagship_command_in_bf16_ddp_on_every_gpu(tmp_path):
    s = gpu_check.SIZES["gpu"]
    cfg = compose_train(gpu_check.flagship_overrides(s, tmp_path, 8, gpu=True), tmp_path / "run", tmp_path / "logs")
    trainer, data, model = cfg.trainer, cfg.data, cfg.model
    assert (trainer.accelerator, trainer.strategy, trainer.devices, trainer.precision) == ("gpu", "ddp", 8, "bf16-mixed")
    assert (trainer.max_steps, trainer.limit_val_batches) == (300, 0)
    assert (data.name, data.batching, data.crop_size, data.batch_size) == ("folder", "crop", 512, 16)
    assert model.backbone.name == "vgg16" and model.backbone.width == 1.0 and not model.backbone.pretrained
    assert model.net.stride == 8
    single = compose_train(gpu_check.flagship_overrides(s, tmp_path, 1, gpu=True), tmp_path / "r1", tmp_path / "l1")
    assert (single.trainer.accelerator, single.trainer.devices, single.trainer.precision) == ("gpu", 1, "bf16-mixed")


def test_smoke_run_goes_through_every_step_and_writes_its_figures(tmp_path):
    figures = gpu_check.main(["--smoke", "--workdir", str(tmp_path)])
    s = gpu_check.SIZES["smoke"]
    with Image.open(tmp_path / "data" / "images" / "0000.jpg") as image:
        assert image.size == s["image_size"][::-1]
    assert np.asarray(Image.open(tmp_path / "data" / "masks" / "0000.png")).max() < gpu_check.CLASSES
    assert json.loads((tmp_path / "gpu_check.json").read_text()) == json.loads(json.dumps(figures))
    steps = json.loads((tmp_path / "train_steps.json").read_text())["seconds"]
    assert figures["steps"] == len(steps) == s["steps"]
    assert np.isclose(figures["images_per_s"], s["batch"] / np.median(steps[s["steps"] // 2:]))
    assert figures["achieved_tflops_per_gpu"] > 0 and figures["mfu"] is None  # no GPU peak on a CPU
    assert set(figures["inference"]) == {f"batch{b}_ms_per_image" for b in s["infer_batches"]}
    curves = figures["loss_curves"]
    assert len(curves["fp32"]) == len(curves["bf16"]) == s["curve_steps"]
    assert abs(curves["bf16"][0] - curves["fp32"][0]) < 0.05 * curves["fp32"][0]  # same weights, same batch
    assert curves["tracks"] == (curves["max_relative_gap"] <= curves["tolerance"])
