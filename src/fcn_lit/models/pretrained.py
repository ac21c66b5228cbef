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
# pytorch-fcn's name for the Caffe VGG16 converted to torchvision's layout.
CAFFE_VGG16_FILE = "vgg16_from_caffe.pth"
# torchvision state-dict prefixes of the classifier layers that FCN discards (fc8, aux heads).
DISCARDED = {
    "vgg16": ("classifier.6.",),
    "vgg19": ("classifier.6.",),
    "alexnet": ("classifier.6.",),
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


def default_caffe_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / CAFFE_VGG16_FILE


def imagenet_state_dict(backbone: str, weights: str = "torchvision", weights_path: str | None = None) -> dict[str, Tensor]:
    """torchvision's ImageNet state dict for ``backbone`` (downloaded into torchvision's cache on
    first use), or a Caffe-converted VGG16 state dict from ``weights_path``."""
    if weights == "caffe":
        if backbone != "vgg16":
            raise ValueError(f"weights='caffe' exists for backbone 'vgg16' only, not {backbone!r}")
        path = Path(weights_path) if weights_path else default_caffe_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"Caffe-converted VGG16 weights not found at {path}. Put a torchvision-layout VGG16 "
                f"state dict converted from Caffe (pytorch-fcn's {CAFFE_VGG16_FILE}) there, or pass "
                "weights_path=<file>."
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
    if len(theirs) != len(mine):
        raise ValueError(f"{backbone} ImageNet state dict has {len(theirs)} tensors, the trunk {len(mine)}")
    for (key, target), (source_key, source) in zip(mine.items(), theirs):
        if source.dim() == 4 and source.shape[1] == 3 and target.shape[1] != 3:
            extra = source.mean(dim=1, keepdim=True).expand(-1, target.shape[1] - 3, -1, -1)
            source = torch.cat([source, extra], dim=1)
        if source.numel() != target.numel():
            raise ValueError(f"{source_key} {tuple(source.shape)} does not fit {key} {tuple(target.shape)}")
        mine[key] = source.reshape(target.shape)
    trunk.load_state_dict(mine)
