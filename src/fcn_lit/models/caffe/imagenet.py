"""The ImageNet classifiers the release starts from, read from their ``.caffemodel`` files
(VGG_ILSVRC_16_layers, bvlc_reference_caffenet) into the state dict layout that
``fcn_lit.models.pretrained.load_imagenet`` copies into a trunk; fc6 and fc7 are fully connected
(InnerProduct) there and become convolutions on loading."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from fcn_lit.models.caffe.layers import CaffeModelError, read_layers

VGG16_CONVS = [f"conv{b}_{i}" for b, n in enumerate((2, 2, 3, 3, 3), start=1) for i in range(1, n + 1)]
CLASSIFIER_LAYERS = {
    "vgg16": VGG16_CONVS + ["fc6", "fc7", "fc8"],
    "caffenet": ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"],
}
TYPES = {"conv": ("Convolution",), "fc": ("InnerProduct", "Convolution")}


def imagenet_state_dict(path: str | Path, backbone: str) -> dict[str, Tensor]:
    """``<layer>.weight`` / ``<layer>.bias`` of every layer of ``backbone``'s ImageNet classifier
    in ``path``, in the classifier's order (fc8 included: the loader discards it)."""
    path, expected = Path(path), CLASSIFIER_LAYERS[backbone]
    layers = {layer.name: layer for layer in read_layers(path) if layer.blobs}
    for layer in layers.values():
        if layer.name not in expected or layer.type not in TYPES[layer.name[:2] if layer.name[:2] == "fc" else "conv"]:
            raise CaffeModelError(
                f"{path}: reading stopped at layer {layer.name!r} ({layer.type}, "
                f"{', '.join(str(tuple(b.shape)) for b in layer.blobs)}): not a layer of the {backbone} ImageNet "
                f"classifier ({expected[0]} ... {expected[-1]}); a release FCN is a checkpoint: ckpt_path=, init_from=")
    missing = [name for name in expected if name not in layers]
    if missing:
        raise CaffeModelError(f"{path} has no layer {missing[0]!r} of the {backbone} ImageNet classifier "
                              f"({len(missing)} missing); is the file cut short?")
    return {f"{name}.{kind}": torch.from_numpy(blob) for name in expected
            for kind, blob in zip(("weight", "bias"), layers[name].blobs)}
