"""Weight surgery: convolutionalize classifiers, transplant between stages, grow the class set,
import pytorch-fcn checkpoints."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torchvision.models import VGG, AlexNet

from fcn_lit.models.fcn import FCN, build_fcn
from fcn_lit.models.heads import Upsample, bilinear_kernel


def _linear_to_conv(linear: nn.Linear, kernel: int) -> nn.Conv2d:
    conv = nn.Conv2d(linear.in_features // kernel**2, linear.out_features, kernel)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.reshape(conv.weight.shape))
        conv.bias.copy_(linear.bias)
    return conv


def convolutionalize(classifier: nn.Module) -> nn.Sequential:
    """torchvision AlexNet / VGG as a fully convolutional net (paper Section 3.1, Figure 2): the
    fully connected layers become convolutions over the pooled map (VGG 7x7, AlexNet 6x6), so a
    224x224 input gives the classifier's logits as a 1x1 map and larger inputs a heatmap."""
    if not isinstance(classifier, (VGG, AlexNet)):
        raise TypeError(f"convolutionalize takes torchvision's AlexNet or VGG, not {type(classifier).__name__}")
    kernel = classifier.avgpool.output_size[0]
    linears = [m for m in classifier.classifier if isinstance(m, nn.Linear)]
    fully_connected = [
        _linear_to_conv(m, kernel if m is linears[0] else 1) if isinstance(m, nn.Linear) else copy.deepcopy(m)
        for m in classifier.classifier
    ]
    return nn.Sequential(*copy.deepcopy(classifier.features), *fully_connected)


def transplant(src: nn.Module, dst: nn.Module, *, stream: str | None = None) -> nn.Module:
    """Copy every parameter and buffer of ``src`` that ``dst`` has under the same name into
    ``dst`` (FCN-32s -> 16s -> 8s, Section 4.2: the new skip score layers keep their zeros).

    ``stream`` puts a single-stream FCN into that stream of a late-fusion net, as the release's
    ``surgery.transplant(new_net, net, suffix='color')`` does for NYUDv2 RGB-HHA: ``src``'s
    ``trunk.*``/``head.*`` land on ``dst``'s ``streams.<stream>.trunk.*``/``.head.*``. Refuses
    when nothing would be copied (say, a single-stream net into a fusion net without ``stream``).
    """
    theirs, mine = src.state_dict(), dst.state_dict()
    if stream is not None:
        streams = getattr(dst, "streams", None)
        if not isinstance(streams, nn.ModuleDict) or stream not in streams:
            have = list(streams) if isinstance(streams, nn.ModuleDict) else "none (not a late-fusion net)"
            raise ValueError(f"cannot transplant into stream={stream!r}: the destination's streams are {have}")
        theirs = {f"streams.{stream}.{k}": v for k, v in theirs.items()}
    shared = theirs.keys() & mine.keys()
    if not shared:
        hint = (" A single-stream FCN goes into one stream of a late-fusion net: transplant(src, dst, stream=<name>)."
                if hasattr(dst, "streams") and stream is None else "")
        raise ValueError(
            f"transplant would copy nothing: no parameter name is shared (source {sorted(theirs)[:2]}..., "
            f"destination {sorted(mine)[:2]}...).{hint}"
        )
    clash = sorted(k for k in shared if theirs[k].shape != mine[k].shape)
    if clash:
        raise ValueError(
            f"cannot transplant: {clash[0]} is {tuple(theirs[clash[0]].shape)} in the source and "
            f"{tuple(mine[clash[0]].shape)} in the destination ({len(clash)} clashes); build both with the "
            "same backbone, width and num_classes (grow_classes first to add classes)"
        )
    mine.update({k: theirs[k] for k in shared})
    dst.load_state_dict(mine)
    return dst


def grow_classes(net: FCN, num_classes: int) -> FCN:
    """Widen every score layer and upsampling of ``net`` to ``num_classes``, in place: the
    existing classes keep their weights, the new ones start at zero scores."""
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if isinstance(child, Upsample):
                if num_classes < child.in_channels:
                    raise ValueError(f"num_classes={num_classes} is fewer than the net's {child.in_channels}")
                grown = Upsample(num_classes, child.stride[0], child.kernel_size[0], child.weight.requires_grad)
                with torch.no_grad():
                    grown.weight.copy_(bilinear_kernel(num_classes, child.kernel_size[0]))
                    grown.weight[: child.in_channels, : child.in_channels] = child.weight
                setattr(parent, name, grown.to(child.weight.device))
            elif isinstance(child, nn.Conv2d) and name.startswith("score"):
                grown = nn.Conv2d(child.in_channels, num_classes, 1).to(child.weight.device)
                with torch.no_grad():
                    grown.weight.zero_()
                    grown.bias.zero_()
                    grown.weight[: child.out_channels] = child.weight
                    grown.bias[: child.out_channels] = child.bias
                setattr(parent, name, grown)
    return net


TORCHFCN_FINAL = {"upscore.weight": 32, "upscore16.weight": 16, "upscore8.weight": 8}
# The `arch` pytorch-fcn's trainer saves (the model's class name): stride and at-once scaling.
TORCHFCN_ARCHS = {"FCN32s": (32, False), "FCN16s": (16, False), "FCN8s": (8, False), "FCN8sAtOnce": (8, True)}


def import_torchfcn(checkpoint: Mapping[str, Tensor], *, at_once: bool | None = None) -> FCN:
    """An FCN-32s/16s/8s VGG16 from a pytorch-fcn (wkentaro) checkpoint, the stride read from its
    keys, in Caffe alignment so it gives the port's logits. The port's files converted from Caffe
    expect BGR 0..255 mean-subtracted input: ``preprocessing("vgg16", "caffe")``.

    A checkpoint of the port's trainer (``{"arch": "FCN8sAtOnce", "model_state_dict": ...}``) says
    its class: the at-once scaling follows from it, and an unknown arch is refused. A bare state
    dict does not: FCN8sAtOnce has FCN8s's keys, so pass ``at_once=True`` for one (default False).
    """
    state = dict(checkpoint.get("model_state_dict", checkpoint))
    strides = [s for key, s in TORCHFCN_FINAL.items() if key in state]
    if len(strides) != 1 or "conv1_1.weight" not in state or "score_fr.weight" not in state:
        raise ValueError(
            "not a pytorch-fcn FCN32s/16s/8s state dict: expected conv1_1 ... fc7, score_fr and one of "
            f"{sorted(TORCHFCN_FINAL)}; got keys {sorted(state)[:6]}..."
        )
    stride = strides[0]
    if "arch" in checkpoint:
        arch = checkpoint["arch"]
        if arch not in TORCHFCN_ARCHS:
            raise ValueError(f"pytorch-fcn checkpoint arch={arch!r} is not one of {sorted(TORCHFCN_ARCHS)}")
        arch_stride, arch_at_once = TORCHFCN_ARCHS[arch]
        if arch_stride != stride:
            raise ValueError(f"pytorch-fcn checkpoint arch={arch!r} but its layers are FCN-{stride}s's")
        if at_once is not None and at_once != arch_at_once:
            raise ValueError(f"at_once={at_once} contradicts the checkpoint's arch={arch!r}; leave at_once unset")
        at_once = arch_at_once
    at_once = bool(at_once)
    if at_once and stride != 8:
        raise ValueError(f"at_once=True is FCN8sAtOnce's; this checkpoint is FCN-{stride}s")
    width = state["conv1_1.weight"].shape[0] / 64
    num_classes = state["score_fr.weight"].shape[0]
    net = build_fcn("vgg16", stride, num_classes, width=width, alignment="caffe", at_once=at_once)
    mine = net.state_dict()
    # The port names every layer as the paper does; ours sit under trunk.<stage>. and head.
    by_layer = {key.split(".", 2)[-1] if key.startswith("trunk.") else key.split(".", 1)[-1]: key for key in mine}
    missing = sorted(by_layer.keys() - state.keys())
    unexpected = sorted(state.keys() - by_layer.keys())
    if missing or unexpected:
        raise ValueError(f"pytorch-fcn state dict does not match FCN-{stride}s: missing {missing}, unexpected {unexpected}")
    for layer, key in by_layer.items():
        if state[layer].shape != mine[key].shape:
            raise ValueError(f"{layer} is {tuple(state[layer].shape)}, FCN-{stride}s needs {tuple(mine[key].shape)}")
        mine[key] = state[layer]
    net.load_state_dict(mine)
    return net
