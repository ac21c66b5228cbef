"""The tensor a trunk receives from a raw image equals what its weights' source feeds its first layer:
torchvision's own classifier fed by its weights' ImageClassification transform (GoogLeNet with the
transform_input its weights switch on), or the Caffe release's numpy data layer."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
import torchvision.transforms.functional as F
from PIL import Image
from torch import nn

from fcn_lit.data.transforms import build_normalization
from fcn_lit.models import build_fcn
from fcn_lit.models.pretrained import WEIGHTS, preprocessing

PHOTO = Path(__file__).resolve().parents[2].parent / "shared/realdata/voc/VOCdevkit/VOC2012/JPEGImages/2011_000003.jpg"
ENTRIES = [(backbone, source) for backbone, sources in WEIGHTS.items() for source in sources]


def real_image() -> Image.Image:
    if not PHOTO.is_file():
        pytest.skip(f"real sample {PHOTO} not found")
    with Image.open(PHOTO) as image:
        return image.convert("RGB")


class Stop(Exception):
    pass


def first_conv_input(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of the first convolution of ``net`` (the forward stops there)."""
    conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    seen = []

    def hook(module, args):
        seen.append(args[0].detach().clone())
        raise Stop

    handle = conv.register_forward_pre_hook(hook)
    try:
        with torch.no_grad(), pytest.raises(Stop):
            net.eval()(x)
    finally:
        handle.remove()
    return seen[0]


def torchvision_first_input(backbone: str, image) -> torch.Tensor:
    """torchvision's model for ``backbone`` on its weights' own transform (resize and crop left out)."""
    transform = torchvision.models.get_model_weights(backbone).DEFAULT.transforms()
    x = F.normalize(F.convert_image_dtype(F.pil_to_tensor(image), torch.float), transform.mean, transform.std)
    # torchvision's googlenet() turns transform_input on whenever it is given weights.
    options = {"transform_input": True, "aux_logits": False, "init_weights": False} if backbone == "googlenet" else {}
    return first_conv_input(torchvision.models.get_model(backbone, weights=None, **options), x[None])


def caffe_first_input(image) -> torch.Tensor:
    """voc_layers.py: BGR float32 minus the float64 ILSVRC mean (one rounding)."""
    in_ = np.array(image, dtype=np.float32)[:, :, ::-1]
    in_ -= np.array((104.00699, 116.66877, 122.67892))
    return torch.from_numpy(in_.transpose((2, 0, 1)).copy())[None]


@pytest.mark.parametrize("backbone,source", ENTRIES)
def test_trunk_input_is_what_the_weights_source_feeds_its_first_layer(backbone, source):
    image = real_image()
    ours = build_normalization(preprocessing(backbone, source))(np.asarray(image))[None]
    net = build_fcn(backbone, 32, 5, width=0.125, weights=source, alignment="aligned")
    received = first_conv_input(net, ours)
    expected = caffe_first_input(image) if source == "caffe" else torchvision_first_input(backbone, image)
    assert received.dtype == expected.dtype == torch.float32
    assert torch.equal(received, expected), f"max difference {(received - expected).abs().max()}"


def test_googlenet_input_is_the_inception_convention():
    """What transform_input amounts to: (x / 255 - 0.5) / 0.5, not the ImageNet statistics."""
    image = np.asarray(real_image())
    x = build_normalization(preprocessing("googlenet"))(image).numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(x, (image / 255.0 - 0.5) / 0.5, atol=2e-6)


def test_the_weights_decide_and_an_explicit_override_is_logged(caplog):
    from fcn_lit.models.pretrained import CAFFE, GOOGLENET, input_preprocessing

    assert input_preprocessing({"name": "googlenet", "weights": "torchvision"}) is GOOGLENET
    assert input_preprocessing({"name": "vgg16", "weights": "caffe"}, "caffe") is CAFFE
    assert not caplog.records
    assert input_preprocessing({"name": "vgg16", "weights": "caffe"}, "imagenet").name == "imagenet"
    assert "data.normalization=imagenet overrides the caffe input that vgg16's caffe weights expect" in caplog.text
    with pytest.raises(ValueError, match="data.normalization='bgr' is not one of"):
        input_preprocessing({"name": "vgg16"}, "bgr")


def test_no_recipe_sets_the_input_by_hand():
    from hydra import compose, initialize_config_dir

    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(str(conf), version_base="1.3"):
        for recipe in sorted((conf / "experiment").glob("*.yaml")):
            cfg = compose("train", overrides=[f"experiment={recipe.stem}"])
            assert cfg.data.normalization is None, recipe.name
