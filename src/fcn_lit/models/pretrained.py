"""ImageNet weights for the trunks, and the input preprocessing each set of weights expects."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.error import URLError

import torch
import torchvision
from torch import Tensor

from fcn_lit.errors import UserError
from fcn_lit.models.backbones import Trunk
from fcn_lit.models.caffe.imagenet import imagenet_state_dict as caffemodel_state_dict
from fcn_lit.models.timm_trunk import WEIGHTS_SOURCE as TIMM
from fcn_lit.models.timm_trunk import pretrained_cfg

log = logging.getLogger(__name__)

# Caffe-converted ImageNet weights, default file names under $TORCH_HOME/hub/checkpoints:
# - vgg16: pytorch-fcn's VGG16 converted to torchvision's layout (features.0.weight, ...), loaded
#   in layer order like torchvision's;
# - caffenet: Caffe's layout, one entry per blob named <layer>.weight / <layer>.bias after the
#   layers of bvlc_reference_caffenet (conv1 (96, 3, 11, 11), conv2 (256, 48, 5, 5) in 2 groups,
#   conv3 (384, 256, 3, 3), conv4 (384, 192, 3, 3), conv5 (256, 192, 3, 3), fc6 (4096, 9216) or
#   the convolutionalized (4096, 256, 6, 6), fc7 (4096, 4096[, 1, 1]), fc8 ignored), weights in
#   Caffe's BGR channel order; loaded by name (load_caffe_layers). No torchvision weights exist.
# Either can also be the Caffe release's own .caffemodel (VGG_ILSVRC_16_layers.caffemodel,
# bvlc_reference_caffenet.caffemodel), read by fcn_lit.models.caffe.imagenet.
CAFFE_FILES = {"vgg16": "vgg16_from_caffe.pth", "caffenet": "caffenet_from_caffe.pth"}
CAFFE_LAYOUT = ("caffenet",)  # loaded by layer name rather than in torchvision's order
# torchvision state-dict prefixes of the classifier layers that FCN discards (fc8, aux heads).
DISCARDED = {
    "vgg16": ("classifier.6.", "fc8."),
    "vgg19": ("classifier.6.",),
    "alexnet": ("classifier.6.",),
    "caffenet": ("fc8.",),
    "googlenet": ("fc.", "aux1.", "aux2."),
    "resnet50": ("fc.",),
    "resnet101": ("fc.",),
}


@dataclass(frozen=True)
class Preprocessing:
    """The input a set of weights was trained on, from raw 0..255 RGB pixels (torchvision's
    ``Weights.transforms`` as plain data): ``x = (pixels[..., ::-1 if bgr] / divisor - mean) / std``,
    then ``input_transform``.

    ``dataset_mean``: the Caffe convention, where the release's data layers subtract the data set's
    own mean (``SegmentationDataset.caffe_means``, a ``CaffeMean`` carrying the dtype the layer
    subtracts in; ``mean`` where a data set declares none, in float64 as voc_layers.py).
    ``input_transform="googlenet"``: torchvision's GoogLeNet ``transform_input``, which its weights
    (converted from TensorFlow) switch on: ImageNet-normalised input mapped to ``(x / 255 - 0.5) / 0.5``.
    """

    name: str
    bgr: bool
    divisor: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dataset_mean: bool = False
    input_transform: str | None = None


# torchvision's ImageNet weights: pixels / 255, then Normalize(mean, std) (its ImageClassification).
IMAGENET = Preprocessing("imagenet", bgr=False, divisor=255.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
GOOGLENET = replace(IMAGENET, name="googlenet", input_transform="googlenet")
# The Inception convention that GoogLeNet's transform_input maps to: (x / 255 - 0.5) / 0.5.
INCEPTION_MEAN = INCEPTION_STD = 0.5
# Caffe weights: BGR pixels in 0..255 minus a mean (fcn-reference section 1); the ILSVRC mean where
# the data set declares none.
CAFFE = Preprocessing("caffe", bgr=True, divisor=1.0, mean=(104.00699, 116.66877, 122.67892),
                      std=(1.0, 1.0, 1.0), dataset_mean=True)
PREPROCESSINGS = {p.name: p for p in (IMAGENET, GOOGLENET, CAFFE)}

# Every trunk's weight sources and the input each expects: the one place a trunk's input convention
# is written. Training, evaluation, predict and export all read it (``input_preprocessing``).
WEIGHTS: dict[str, dict[str, Preprocessing]] = {
    "vgg16": {"torchvision": IMAGENET, "caffe": CAFFE},
    "vgg19": {"torchvision": IMAGENET},
    "alexnet": {"torchvision": IMAGENET},
    "googlenet": {"torchvision": GOOGLENET},
    "resnet50": {"torchvision": IMAGENET},
    "resnet101": {"torchvision": IMAGENET},
    "caffenet": {"caffe": CAFFE},
}
# Any timm model (``fcn_lit.models.timm_trunk``): the input its pretrained config names.
SOURCES = (*dict.fromkeys(source for sources in WEIGHTS.values() for source in sources), TIMM)


def timm_preprocessing(name: str) -> Preprocessing:
    """The input of timm model ``name``'s weights, from its pretrained config (RGB, mean and std on
    0..1 pixels), named ``timm:<name>``."""
    cfg = pretrained_cfg(name)
    return Preprocessing(f"{TIMM}:{name}", bgr=False, divisor=255.0, mean=tuple(cfg.mean), std=tuple(cfg.std))


def named_preprocessing(name: str) -> Preprocessing:
    """A preprocessing by its name: one of ``PREPROCESSINGS``, or ``timm:<model>``."""
    if name.startswith(f"{TIMM}:"):
        return timm_preprocessing(name.split(":", 1)[1])
    if name not in PREPROCESSINGS:
        raise ValueError(f"data.normalization={name!r} is not one of {tuple(PREPROCESSINGS)} or timm:<model> "
                         "(null: what the trunk's weights expect)")
    return PREPROCESSINGS[name]


def preprocessing(backbone: str = "vgg16", weights: str = "torchvision") -> Preprocessing:
    """The input ``backbone``'s ``weights`` expect."""
    if weights == TIMM:
        return timm_preprocessing(backbone)
    sources = WEIGHTS.get(backbone)
    if sources is None:
        raise ValueError(f"backbone={backbone!r} is not one of {tuple(WEIGHTS)}")
    if weights not in sources:
        only = f"; it has {next(iter(sources)).title()} ImageNet weights only" if len(sources) == 1 else ""
        raise ValueError(f"weights={weights!r} is not one of backbone={backbone!r}'s weights {tuple(sources)}{only}: "
                         "set model.backbone.weights to one of them")
    return sources[weights]


def input_preprocessing(backbone: Mapping[str, Any], override: str | None = None) -> Preprocessing:
    """The preprocessing a model config's trunk (``model.backbone``: name, weights) expects;
    ``override`` (``data.normalization``, a name of ``PREPROCESSINGS``) replaces it, logged when it differs."""
    expected = preprocessing(backbone["name"], backbone.get("weights", "torchvision"))
    if override is None or override == expected.name:
        return expected
    chosen = named_preprocessing(override)
    log.warning("data.normalization=%s overrides the %s input that %s's %s weights expect",
                override, expected.name, backbone["name"], backbone.get("weights", "torchvision"))
    return chosen


class WeightsNotFoundError(UserError, FileNotFoundError):
    """ImageNet weights that are neither cached nor downloadable (offline)."""


def default_caffe_path(backbone: str = "vgg16") -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / CAFFE_FILES[backbone]


def imagenet_state_dict(backbone: str, weights: str = "torchvision", weights_path: str | None = None) -> dict[str, Tensor]:
    """torchvision's ImageNet state dict for ``backbone`` (downloaded into torchvision's cache on
    first use), or a Caffe-converted state dict (VGG16, CaffeNet) from ``weights_path``: a .pth, or
    the Caffe classifier's own .caffemodel."""
    preprocessing(backbone, weights)  # raises unless the table lists these weights for the trunk
    if weights == "caffe":
        path = Path(weights_path) if weights_path else default_caffe_path(backbone)
        if not path.is_file():
            raise FileNotFoundError(
                f"Caffe-converted {backbone} weights not found at {path}. Put a state dict converted "
                f"from Caffe there ({CAFFE_FILES[backbone]}, layout in fcn_lit.models.pretrained), or "
                "pass model.backbone.weights_path=<file>."
            )
        if path.suffix == ".caffemodel":
            return caffemodel_state_dict(path, backbone)
        return torch.load(path, map_location="cpu", weights_only=True)
    entry = torchvision.models.get_model_weights(backbone).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(entry.url)
    try:
        return entry.get_state_dict(progress=False)
    except (URLError, OSError, RuntimeError) as error:
        raise WeightsNotFoundError(
            f"could not get torchvision's ImageNet weights for {backbone} ({error}). Offline, download "
            f"{entry.url} elsewhere and put the file at {cached} (torchvision's cache, under $TORCH_HOME). "
            "Or, without weights:\n"
            "  python train.py experiment=quickstart              # the CPU quickstart (1/8-width trunk from scratch)\n"
            "  python train.py model.backbone.pretrained=false    # this config, trained from scratch"
        ) from error


def load_imagenet(trunk: Trunk, backbone: str, state: dict[str, Tensor]) -> None:
    """Copy a torchvision classifier's tensors into ``trunk``, in order (the trunks keep
    torchvision's layer order); fully connected weights are reshaped into convolutions, and
    input channels beyond RGB get the mean of the RGB filters (RGB-D early fusion, Section 5.3)."""
    theirs = [(k, v) for k, v in state.items() if not k.startswith(DISCARDED[backbone])]
    mine = trunk.state_dict()
    if backbone in CAFFE_LAYOUT:
        load_caffe_layers(trunk, dict(theirs))
        return
    if len(theirs) != len(mine):
        raise ValueError(f"{backbone} ImageNet state dict has {len(theirs)} tensors, the trunk {len(mine)}")
    for (key, target), (source_key, source) in zip(mine.items(), theirs):
        mine[key] = _fitted(source, source_key, target, key)
    trunk.load_state_dict(mine)


def _fitted(source: Tensor, source_key: str, target: Tensor, key: str) -> Tensor:
    """``source`` in ``target``'s shape: fully connected weights reshaped into convolutions, input
    channels beyond RGB filled with the mean of the RGB filters."""
    if source.dim() == 4 and source.shape[1] == 3 and target.shape[1] != 3:
        extra = source.mean(dim=1, keepdim=True).expand(-1, target.shape[1] - 3, -1, -1)
        source = torch.cat([source, extra], dim=1)
    if source.numel() != target.numel():
        raise ValueError(f"{source_key} {tuple(source.shape)} does not fit {key} {tuple(target.shape)}")
    return source.reshape(target.shape)


def load_caffe_layers(trunk: Trunk, state: dict[str, Tensor]) -> None:
    """Copy a Caffe-layout state dict (``<layer>.weight``, ``<layer>.bias``; see CAFFE_FILES) into
    the trunk layers of the same names (``stride8.conv1.weight`` <- ``conv1.weight``)."""
    mine = trunk.state_dict()
    by_layer = {key.split(".", 1)[1]: key for key in mine}
    missing, unexpected = sorted(by_layer.keys() - state.keys()), sorted(state.keys() - by_layer.keys())
    if missing or unexpected:
        raise ValueError(f"Caffe state dict does not match the trunk: missing {missing}, unexpected {unexpected}")
    for layer, key in by_layer.items():
        mine[key] = _fitted(state[layer], layer, mine[key], key)
    trunk.load_state_dict(mine)
