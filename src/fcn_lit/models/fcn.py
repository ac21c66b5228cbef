"""Whole networks: ``build_fcn`` and the single-stream, multi-head and late-fusion FCNs."""

from __future__ import annotations

from torch import Tensor, nn

from fcn_lit.models.alignment import check_alignment
from fcn_lit.models.backbones import ALWAYS_NORMALISED, BACKBONES, Trunk, build_trunk
from fcn_lit.models.heads import FINAL_UPSCORE, STRIDES, SkipHead
from fcn_lit.models.pretrained import SOURCES, TIMM, imagenet_state_dict, load_imagenet, preprocessing
from fcn_lit.models.timm_trunk import TimmTrunk

NORMS = (None, "batch")


class FCN(nn.Module):
    """A trunk and one skip head: (N, C, H, W) -> (N, num_classes, H, W) logits."""

    def __init__(self, trunk: Trunk, head: SkipHead):
        super().__init__()
        self.trunk, self.head = trunk, head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x), x.shape[-2:])


# The head a multi-head net (SIFT Flow: semantic + geometric) is scored, exported and shown by.
PRIMARY_HEAD = "semantic"


class MultiHeadFCN(nn.Module):
    """One trunk, one head per task (SIFT Flow: semantic and geometric, Section 5.3);
    ``forward`` returns ``{head: logits}``."""

    def __init__(self, trunk: Trunk, heads: dict[str, SkipHead]):
        super().__init__()
        self.trunk, self.heads = trunk, nn.ModuleDict(heads)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        taps = self.trunk(x)
        return {name: head(taps, x.shape[-2:]) for name, head in self.heads.items()}


class LateFusionFCN(nn.Module):
    """NYUDv2 late fusion (Section 5.3): a full FCN per stream on its slice of the input
    channels, score maps averaged before the one final upsampling, which the streams share."""

    def __init__(self, streams: dict[str, FCN], channels: dict[str, int]):
        super().__init__()
        self.streams = nn.ModuleDict(streams)
        self.channels = dict(channels)
        heads = [s.head for s in self.streams.values()]
        final = FINAL_UPSCORE[heads[0].stride]
        for head in heads[1:]:
            setattr(head, final, getattr(heads[0], final))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != sum(self.channels.values()):
            raise ValueError(f"input has {x.shape[1]} channels, streams {self.channels} need {sum(self.channels.values())}")
        parts = x.split(list(self.channels.values()), dim=1)
        scores = [s.head.fuse(s.trunk(p)) for s, p in zip(self.streams.values(), parts)]
        fused = sum(scores) / len(scores)
        return next(iter(self.streams.values())).head.upsample(fused, x.shape[-2:])


def _check_timm(width, norm, alignment):
    """timm models come whole: their own widths and norms, and no Caffe padding."""
    if width != 1.0:
        raise ValueError(f"width={width}: timm trunks have no width multiplier; pick a smaller timm model instead")
    if norm is not None:
        raise ValueError(f"norm={norm!r}: timm trunks bring their own normalisation layers; set model.backbone.norm=null")
    if alignment != "aligned":
        raise ValueError(f"alignment={alignment!r}: timm trunks have no Caffe-mode padding; use model.net.alignment=aligned")


def _check(backbone, stride, width, pretrained, norm, alignment, weights, in_channels, fusion, streams, heads):
    if weights == TIMM:
        _check_timm(width, norm, alignment)
    elif backbone not in BACKBONES:
        raise ValueError(f"backbone={backbone!r} is not one of {tuple(BACKBONES)} (any timm model: weights=timm)")
    if stride not in STRIDES:
        raise ValueError(f"stride={stride!r} is not one of {STRIDES}")
    if not width > 0:
        raise ValueError(f"width={width!r} must be > 0")
    if pretrained and width != 1.0:
        raise ValueError(f"width={width} has no pretrained weights; use model.backbone.width=1.0 or "
                         "model.backbone.pretrained=false")
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r} is not one of {NORMS}")
    if pretrained and norm == "batch" and backbone not in ALWAYS_NORMALISED:
        raise ValueError(f"norm='batch' has no ImageNet weights for {backbone}; use model.backbone.norm=null or "
                         "model.backbone.pretrained=false")
    check_alignment(alignment)
    if weights not in SOURCES:
        raise ValueError(f"weights={weights!r} is not one of {SOURCES}")
    if pretrained:
        preprocessing(backbone, weights)  # raises unless the table lists these weights for the trunk
    if pretrained and in_channels < 3:
        raise ValueError(f"in_channels={in_channels} < 3 cannot reuse ImageNet RGB filters")
    if fusion not in (None, "late"):
        raise ValueError(f"fusion={fusion!r} is not one of (None, 'late')")
    if fusion == "late" and not streams:
        raise ValueError("fusion='late' needs streams, e.g. {'color': 3, 'hha': 3}")
    if fusion == "late" and heads:
        raise ValueError("fusion='late' and heads cannot be combined")


def build_fcn(
    backbone: str = "vgg16",
    stride: int = 8,
    num_classes: int = 21,
    pretrained: bool = False,
    *,
    width: float = 1.0,
    norm: str | None = None,
    alignment: str = "caffe",
    at_once: bool = False,
    learnable_upsampling: bool = False,
    in_channels: int = 3,
    weights: str = "torchvision",
    weights_path: str | None = None,
    heads: dict[str, int] | None = None,
    fusion: str | None = None,
    streams: dict[str, int] | None = None,
) -> nn.Module:
    """FCN-{stride}s on a ``backbone`` trunk (see docs/architecture.md for the options); with
    ``weights="timm"``, ``backbone`` names any timm model (``fcn_lit.models.timm_trunk``).

    ``heads`` (e.g. ``{"semantic": 33, "geometric": 3}``) makes a multi-head net returning a dict
    (``num_classes`` ignored); ``fusion="late"`` with ``streams`` (e.g. ``{"color": 3, "hha": 3}``)
    builds one full FCN per stream on its channels of the concatenated input.
    """
    _check(backbone, stride, width, pretrained, norm, alignment, weights, in_channels, fusion, streams, heads)
    head_options = dict(stride=stride, at_once=at_once, learnable_upsampling=learnable_upsampling)

    imagenet = imagenet_state_dict(backbone, weights, weights_path) if pretrained and weights != TIMM else None

    def trunk(channels: int) -> Trunk | TimmTrunk:
        if weights == TIMM:
            return TimmTrunk(backbone, pretrained=pretrained, in_channels=channels, weights_path=weights_path)
        net = build_trunk(backbone, width=width, norm=norm, alignment=alignment, in_channels=channels)
        if imagenet is not None:
            load_imagenet(net, backbone, imagenet)
        return net

    def fcn(channels: int) -> FCN:
        t = trunk(channels)
        return FCN(t, SkipHead(t.channels, t.coords, num_classes, **head_options))

    if fusion == "late":
        return LateFusionFCN({name: fcn(c) for name, c in streams.items()}, streams)
    if heads:
        t = trunk(in_channels)
        return MultiHeadFCN(t, {name: SkipHead(t.channels, t.coords, n, **head_options) for name, n in heads.items()})
    return fcn(in_channels)
