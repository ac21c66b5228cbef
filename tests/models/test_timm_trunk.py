"""Any timm model as an FCN trunk: taps against timm's own forward, a training step on several small
models, weights from a file, the offline error, the input preprocessing from timm's config."""

import json

import numpy as np
import pytest
import safetensors.torch
import timm
import torch
from runconfig import TINY, compose_config

from fcn_lit.data.transforms import build_normalization
from fcn_lit.training.losses import segmentation_loss
from fcn_lit.models import build_fcn
from fcn_lit.models.pretrained import input_preprocessing
from fcn_lit.models.timm_trunk import TimmTrunk
from fcn_lit.training.optim import build_optimizer
from fcn_lit.training.train import train

SMALL = ["test_convnext", "test_efficientnet", "test_resnet", "test_byobnet"]


def reference_taps(model, x):
    """timm's own classifier, its last three feature levels (strides 8, 16, 32)."""
    return model.eval().forward_intermediates(x, indices=3, intermediates_only=True)


@pytest.mark.parametrize("name", SMALL)
def test_a_timm_trunk_taps_strides_8_16_32_and_trains_a_step(name):
    torch.manual_seed(0)
    net = build_fcn(name, 8, 4, weights="timm", alignment="aligned")
    x, target = torch.randn(2, 3, 45, 61), torch.randint(0, 4, (2, 45, 61))
    target[:, :5] = 255
    taps = net.trunk(x)
    assert [tuple(t.shape[-2:]) for t in taps.values()] == [(8, 8), (4, 4), (2, 2)]  # padded to 64 x 64
    assert {s: t.shape[1] for s, t in taps.items()} == net.trunk.channels
    assert net.trunk.channels == dict(zip((8, 16, 32), timm.create_model(name, features_only=True).feature_info.channels()[-3:]))

    optimizer = build_optimizer(net, name="sgd", lr=0.1, momentum=0.9, weight_decay=0.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for _ in range(2):  # the score layers start at zero: the trunk learns from the second step on
        optimizer.zero_grad()
        logits = net.train()(x)
        assert logits.shape == (2, 4, 45, 61)
        loss = segmentation_loss(logits, target)
        loss.backward()
        optimizer.step()
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert {"head.score_fr.weight", "head.score_pool4.weight", "head.score_pool3.weight"} <= changed
    assert any(k.startswith("trunk.body.") for k in changed) and torch.isfinite(loss)


@torch.no_grad()
@pytest.mark.parametrize("name", ["test_convnext", "test_efficientnet"])
def test_weights_path_loads_the_file_and_the_taps_are_timms_features(tmp_path, name):
    torch.manual_seed(1)
    model = timm.create_model(name)
    for p in model.parameters():
        p.add_(torch.randn_like(p))  # nothing left at its initial value
    safetensors.torch.save_file(model.state_dict(), tmp_path / "weights.safetensors")
    net = build_fcn(name, 8, 4, pretrained=True, weights="timm", alignment="aligned",
                    weights_path=str(tmp_path / "weights.safetensors")).eval()
    x = torch.randn(1, 3, 64, 96)
    for got, expected in zip(net.trunk(x).values(), reference_taps(model, x), strict=True):
        torch.testing.assert_close(got, expected)


def test_offline_the_error_names_the_file_to_provide(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError) as error:
        TimmTrunk("test_convnext", pretrained=True)
    message = str(error.value)
    assert "https://huggingface.co/timm/test_convnext.r160_in1k/resolve/main/model.safetensors" in message
    assert "model.backbone.weights_path=" in message and "pretrained=false" in message


def test_input_preprocessing_comes_from_the_models_pretrained_config():
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    for name, mean, std in (("test_convnext", (0.5,) * 3, (0.5,) * 3),
                            ("convnext_tiny", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))):
        expected = (pixels / 255.0 - np.array(mean)) / np.array(std)
        preprocessing = input_preprocessing({"name": name, "weights": "timm"})
        assert preprocessing.name == f"timm:{name}"
        for normalization in (build_normalization(preprocessing), build_normalization(preprocessing.name)):
            np.testing.assert_allclose(normalization(pixels).numpy().transpose(1, 2, 0), expected, rtol=1e-5, atol=1e-6)


def test_unsuitable_models_and_settings_are_named():
    with pytest.raises(ValueError, match=r"'test_vit' has its last feature levels at reductions \[16, 16, 16\]"):
        build_fcn("test_vit", 8, 4, weights="timm", alignment="aligned")
    with pytest.raises(ValueError, match="'convnext_tinyy' is not a timm model"):
        build_fcn("convnext_tinyy", 8, 4, weights="timm", alignment="aligned")
    with pytest.raises(ValueError, match="width=0.5: timm trunks have no width multiplier"):
        build_fcn("test_convnext", 8, 4, weights="timm", alignment="aligned", width=0.5)
    with pytest.raises(ValueError, match="use model.net.alignment=aligned"):
        build_fcn("test_convnext", 8, 4, weights="timm", alignment="caffe")


@pytest.mark.slow
def test_train_py_trains_a_timm_trunk_from_the_config(tmp_path):
    tiny = [o for o in TINY if not o.startswith("model/backbone=")]
    cfg = compose_config(tmp_path / "run", [*tiny, f"data.root={tmp_path / 'synthetic'}", "model/backbone=timm",
                                            "model.backbone.name=test_convnext", "model.backbone.pretrained=false"])
    results = train(cfg)
    saved = json.loads(json.dumps(results))
    assert 0.0 <= saved["test"]["mean_iu"] <= 1.0
    checkpoint = torch.load(results["checkpoint"], weights_only=True)
    assert checkpoint["hyper_parameters"]["backbone"]["weights"] == "timm"
    assert any(k.startswith("net.trunk.body.stages_3") for k in checkpoint["state_dict"])
