"""ImageNet weights for the trunks, and the input preprocessing each set of weights expects."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.error import URLError

import torch
import torchvision
from torch import Tensor

from fcn_lit.models.backbones import Trunk

WEIGHTS = ("torchvision", "caffe")
# Caffe-converted ImageNet weights, default file names under $TORCH_HOME/hub/checkpoints:
# - vgg16: pytorch-fcn's VGG16 converted to torchvision's layout (features.0.weight, ...), loaded
#   in layer order like torchvision's;
# - caffenet: Caffe's layout, one entry per blob named <layer>.weight / <layer>.bias after the
#   layers of bvlc_reference_caffenet (conv1 (96, 3, 11, 11), conv2 (256, 48, 5, 5) in 2 groups,
#   conv3 (384, 256, 3, 3), conv4 (384, 192, 3, 3), conv5 (256, 192, 3, 3), fc6 (4096, 9216) or
#   the convolutionalized (4096, 256, 6, 6), fc7 (4096, 4096[, 1, 1]), fc8 ignored), weights in
#   Caffe's BGR channel order; loaded by name (load_caffe_layers). No torchvision weights exist.
CAFFE_FILES = {"vgg16": "vgg16_from_caffe.pth", "caffenet": "caffenet_from_caffe.pth"}
CAFFE_ONLY = ("caffenet",)
# torchvision state-dict prefixes of the classifier layers that FCN discards (fc8, aux heads).
DISCARDED = {
    "vgg16": ("classifier.6.",),
    "vgg19": ("classifier.6.",),
    "alexnet": ("classifier.6.",),
    "caffenet": ("fc8.",),
    "googlenet": ("fc.", "aux1.", "aux2."),
    "resnet50": ("fc.",),
    "resnet101": ("fc.",),
}

_IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "bgr": False, "scale": 1 / 255}
# torchvision's GoogLeNet weights came from TensorFlow; its transform_input maps to this.
_INCEPTION = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "bgr": False, "scale": 1 / 255}
# Caffe VGG16: BGR pixels in 0..255 minus the ILSVRC mean (fcn-reference section 1).
_CAFFE = {"mean": (104.00699, 116.66877, 122.67892), "std": (1.0, 1.0, 1.0), "bgr": True, "scale": 1.0}


def preprocessing(weights: str = "torchvision", backbone: str = "vgg16") -> dict:
    """Input normalisation the trunk's weights expect, as plain data:
    ``x = (pixels[..., ::-1 if bgr] * scale - mean) / std`` on 0..255 RGB pixels."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r} is not one of {WEIGHTS}")
    if weights == "caffe":
        return dict(_CAFFE)
    return dict(_INCEPTION if backbone == "googlenet" else _IMAGENET)


def default_caffe_path(backbone: str = "vgg16") -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / CAFFE_FILES[backbone]


def imagenet_state_dict(backbone: str, weights: str = "torchvision", weights_path: str | None = None) -> dict[str, Tensor]:
    """torchvision's ImageNet state dict for ``backbone`` (downloaded into torchvision's cache on
    first use), or a Caffe-converted state dict (VGG16, CaffeNet) from ``weights_path``."""
    if backbone in CAFFE_ONLY and weights != "caffe":
        raise ValueError(f"backbone={backbone!r} has Caffe ImageNet weights only: use weights=caffe")
    if weights == "caffe":
        if backbone not in CAFFE_FILES:
            raise ValueError(f"weights='caffe' exists for backbones {sorted(CAFFE_FILES)} only, not {backbone!r}")
        path = Path(weights_path) if weights_path else default_caffe_path(backbone)
        if not path.is_file():
            raise FileNotFoundError(
                f"Caffe-converted {backbone} weights not found at {path}. Put a state dict converted "
                f"from Caffe there ({CAFFE_FILES[backbone]}, layout in fcn_lit.models.pretrained), or "
                "pass weights_path=<file>."
            )
        return torch.load(path, map_location="cpu", weights_only=True)
    entry = torchvision.models.get_model_weights(backbone).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(entry.url)
    try:
        return entry.get_state_dict(progress=False)
    except (URLError, OSError, RuntimeError) as error:
        raise FileNotFoundError(
            f"could not get torchvision's ImageNet weights for {backbone} ({error}). Offline, download "
            f"{entry.url} elsewhere and put the file at {cached} (torchvision's cache, under $TORCH_HOME), "
            "or use pretrained=false."
        ) from error


def load_imagenet(trunk: Trunk, backbone: str, state: dict[str, Tensor]) -> None:
    """Copy a torchvision classifier's tensors into ``trunk``, in order (the trunks keep
    torchvision's layer order); fully connected weights are reshaped into convolutions, and
    input channels beyond RGB get the mean of the RGB filters (RGB-D early fusion, Section 5.3)."""
    theirs = [(k, v) for k, v in state.items() if not k.startswith(DISCARDED[backbone])]
    mine = trunk.state_dict()
    if backbone in CAFFE_ONLY:
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
