"""Trunks: torchvision's ImageNet classifiers, convolutionalized and cut at strides 8, 16 and 32.

Each trunk is three ``nn.Sequential`` stages whose outputs are the taps the heads read
(VGG16: pool3, pool4, fc7). Layer order and shapes follow torchvision's classifiers exactly, so
their ImageNet weights copy over tensor by tensor (``load_imagenet``); the fully connected fc6 and
fc7 become 7x7 (AlexNet: 6x6) and 1x1 convolutions (paper Section 3.1).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from torch import Tensor, nn
from torchvision.models.googlenet import BasicConv2d, Inception
from torchvision.models.resnet import Bottleneck

from fcn_lit.models.alignment import Coord, coord_map, fc_padding, first_conv_padding, max_pool

TAPS = (8, 16, 32)


class Trunk(nn.Module):
    """Feature layers in three stages; ``forward`` returns ``{8: ..., 16: ..., 32: ...}``."""

    def __init__(self, stride8: nn.Module, stride16: nn.Module, stride32: nn.Module, channels: tuple[int, int, int]):
        super().__init__()
        self.stride8, self.stride16, self.stride32 = stride8, stride16, stride32
        self.channels = dict(zip(TAPS, channels))
        coord, self.coords = Coord(), {}
        for stride, stage in zip(TAPS, (stride8, stride16, stride32)):
            coord = self.coords[stride] = coord_map(stage, coord)
            assert coord.scale == stride, f"stage ends at stride {coord.scale}, expected {stride}"

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        x8 = self.stride8(x)
        x16 = self.stride16(x8)
        return {8: x8, 16: x16, 32: self.stride32(x16)}


def scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def _conv_block(name: str, cin: int, cout: int, kernel: int, padding: int, norm: str | None, stride: int = 1,
                groups: int = 1):
    """conv{name}, [bn{name}], relu{name}: the Caffe layer names, which pytorch-fcn kept."""
    layers = [(f"conv{name}", nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups))]
    if norm == "batch":
        layers.append((f"bn{name}", nn.BatchNorm2d(cout)))
    layers.append((f"relu{name}", nn.ReLU(inplace=True)))
    return layers


def _fc_block(name: str, cin: int, cout: int, kernel: int, padding: int, norm: str | None):
    layers = [(name, nn.Conv2d(cin, cout, kernel, padding=padding))]
    if norm == "batch":
        layers.append((f"bn{name[2:]}", nn.BatchNorm2d(cout)))
    layers += [(f"relu{name[2:]}", nn.ReLU(inplace=True)), (f"drop{name[2:]}", nn.Dropout(0.5))]
    return layers


def _init_from_scratch(module: nn.Module) -> None:
    """torchvision's VGG initialisation, for trunks trained without ImageNet weights."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG_CHANNELS = (64, 128, 256, 512, 512)


def vgg(name: str, *, width: float, norm: str | None, alignment: str, in_channels: int) -> Trunk:
    """VGG16/19: taps pool3 (stride 8), pool4 (16), fc7 (32); fc6 is a 7x7 convolution."""
    blocks, cin = [], in_channels
    for b, (convs, channels) in enumerate(zip(VGG_BLOCKS[name], VGG_CHANNELS), start=1):
        cout, layers = scaled(channels, width), []
        for i in range(1, convs + 1):
            padding = first_conv_padding(alignment, 3) if (b, i) == (1, 1) else 1
            layers += _conv_block(f"{b}_{i}", cin, cout, 3, padding, norm)
            cin = cout
        blocks.append(layers + [(f"pool{b}", max_pool(alignment, 2, 2))])
    fc = scaled(4096, width)
    fcs = _fc_block("fc6", cin, fc, 7, fc_padding(alignment, 7), norm) + _fc_block("fc7", fc, fc, 1, 0, norm)
    trunk = Trunk(
        nn.Sequential(OrderedDict(blocks[0] + blocks[1] + blocks[2])),
        nn.Sequential(OrderedDict(blocks[3])),
        nn.Sequential(OrderedDict(blocks[4] + fcs)),
        (scaled(256, width), scaled(512, width), fc),
    )
    _init_from_scratch(trunk)
    return trunk


def _caffe_lrn() -> nn.LocalResponseNorm:
    """Caffe's LRN (ACROSS_CHANNELS, local_size 5, alpha 1e-4, beta 0.75, k 1): torch's
    LocalResponseNorm has the same formula, x / (k + alpha / size * sum of x^2 over the window)^beta,
    with the window centred and zero-padded as Caffe's."""
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)


def _alexnet_layers(widths: tuple[int, ...], caffe: bool, *, width: float, norm: str | None, alignment: str,
                    in_channels: int) -> Trunk:
    """conv1 11x11/4, pool1, conv2 5x5, pool2, conv3-5 3x3, pool5, fc6 6x6, fc7; ``caffe`` adds
    CaffeNet's LRN after pool1 and pool2 and splits conv2/conv4/conv5 in two groups."""
    c1, c2, c3, c4, c5, fc = (scaled(c, width) for c in widths)
    groups = 2 if caffe else 1
    stride8 = _conv_block("1", in_channels, c1, 11, first_conv_padding(alignment, 11), norm, stride=4)
    stride8 += [("pool1", max_pool(alignment, 3, 2))] + ([("norm1", _caffe_lrn())] if caffe else [])
    stride16 = _conv_block("2", c1, c2, 5, 2, norm, groups=groups) + [("pool2", max_pool(alignment, 3, 2))]
    stride16 += [("norm2", _caffe_lrn())] if caffe else []
    stride32 = (
        _conv_block("3", c2, c3, 3, 1, norm)
        + _conv_block("4", c3, c4, 3, 1, norm, groups=groups)
        + _conv_block("5", c4, c5, 3, 1, norm, groups=groups)
        + [("pool5", max_pool(alignment, 3, 2))]
        + _fc_block("fc6", c5, fc, 6, fc_padding(alignment, 6), norm)
        + _fc_block("fc7", fc, fc, 1, 0, norm)
    )
    trunk = Trunk(*(nn.Sequential(OrderedDict(s)) for s in (stride8, stride16, stride32)), (c1, c2, fc))
    _init_from_scratch(trunk)
    return trunk


def alexnet(**options) -> Trunk:
    """torchvision's AlexNet (not the paper's: see ``caffenet``): widths 64/192/384/256/256; taps
    pool1 (stride 8), pool2 (16), fc7 (32); fc6 is a 6x6 convolution."""
    return _alexnet_layers((64, 192, 384, 256, 256, 4096), caffe=False, **options)


def caffenet(**options) -> Trunk:
    """CaffeNet, the AlexNet of the release's voc-fcn-alexnet (CVPR Table 1): conv widths
    96/256/384/384/256, LRN after pool1 and pool2, conv2/conv4/conv5 in two groups; taps norm1
    (stride 8), norm2 (16), fc7 (32); fc6 is a 6x6 convolution. Layer names are Caffe's, so a
    Caffe-converted state dict loads by name (``fcn_lit.models.pretrained.load_caffe_layers``)."""
    return _alexnet_layers((96, 256, 384, 384, 256, 4096), caffe=True, **options)


# torchvision's GoogLeNet table: (in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj).
INCEPTIONS = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


def googlenet(*, width: float, norm: str | None, alignment: str, in_channels: int) -> Trunk:
    """GoogLeNet without its final average pooling and classifier (paper Section 4.1): taps
    inception3b (stride 8), inception4e (16), inception5b (32). Always batch-normalised, as
    torchvision's."""

    def inception(name: str) -> tuple[str, Inception]:
        return name, Inception(*(scaled(c, width) for c in INCEPTIONS[name]))

    stride8 = [
        ("conv1", BasicConv2d(in_channels, scaled(64, width), kernel_size=7, stride=2,
                              padding=first_conv_padding(alignment, 7))),
        ("maxpool1", max_pool(alignment, 3, 2)),
        ("conv2", BasicConv2d(scaled(64, width), scaled(64, width), kernel_size=1)),
        ("conv3", BasicConv2d(scaled(64, width), scaled(192, width), kernel_size=3, padding=1)),
        ("maxpool2", max_pool(alignment, 3, 2)),
        inception("inception3a"),
        inception("inception3b"),
    ]
    stride16 = [("maxpool3", max_pool(alignment, 3, 2))] + [inception(f"inception4{c}") for c in "abcde"]
    stride32 = [("maxpool4", max_pool(alignment, 2, 2)), inception("inception5a"), inception("inception5b")]
    out = [sum(scaled(c, width) for c in (INCEPTIONS[n][1], INCEPTIONS[n][3], INCEPTIONS[n][5], INCEPTIONS[n][6]))
           for n in ("inception3b", "inception4e", "inception5b")]
    trunk = Trunk(*(nn.Sequential(OrderedDict(s)) for s in (stride8, stride16, stride32)), tuple(out))
    _init_from_scratch(trunk)
    return trunk


RESNET_BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}


def resnet(name: str, *, width: float, norm: str | None, alignment: str, in_channels: int) -> Trunk:
    """ResNet-50/101 (not in the paper): taps layer2 (stride 8), layer3 (16), layer4 (32),
    without the average pooling and classifier. Always batch-normalised, as torchvision's."""
    inplanes = scaled(64, width)

    def layer(planes: int, blocks: int, stride: int) -> nn.Sequential:
        nonlocal inplanes
        planes = scaled(planes, width)
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * Bottleneck.expansion, 1, stride, bias=False),
            nn.BatchNorm2d(planes * Bottleneck.expansion),
        )
        layers = [Bottleneck(inplanes, planes, stride, downsample)]
        inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(inplanes, planes) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    n1, n2, n3, n4 = RESNET_BLOCKS[name]
    stem = [
        ("conv1", nn.Conv2d(in_channels, inplanes, 7, 2, first_conv_padding(alignment, 7), bias=False)),
        ("bn1", nn.BatchNorm2d(inplanes)),
        ("relu", nn.ReLU(inplace=True)),
        ("maxpool", max_pool(alignment, 3, 2)),
        ("layer1", layer(64, n1, 1)),
        ("layer2", layer(128, n2, 2)),
    ]
    stride16 = nn.Sequential(OrderedDict(layer3=layer(256, n3, 2)))
    stride32 = nn.Sequential(OrderedDict(layer4=layer(512, n4, 2)))
    trunk = Trunk(nn.Sequential(OrderedDict(stem)), stride16, stride32,
                  tuple(scaled(c, width) * 4 for c in (128, 256, 512)))
    _init_from_scratch(trunk)
    return trunk


BACKBONES: dict[str, Callable[..., Trunk]] = {
    "vgg16": lambda **kw: vgg("vgg16", **kw),
    "vgg19": lambda **kw: vgg("vgg19", **kw),
    "alexnet": alexnet,
    "caffenet": caffenet,
    "googlenet": googlenet,
    "resnet50": lambda **kw: resnet("resnet50", **kw),
    "resnet101": lambda **kw: resnet("resnet101", **kw),
}
# Trunks whose layers carry BatchNorm whatever `norm` says (torchvision's own design).
ALWAYS_NORMALISED = ("googlenet", "resnet50", "resnet101")


def build_trunk(backbone: str, *, width: float = 1.0, norm: str | None = None,
                alignment: str = "caffe", in_channels: int = 3) -> Trunk:
    if backbone not in BACKBONES:
        raise ValueError(f"backbone={backbone!r} is not one of {tuple(BACKBONES)}")
    return BACKBONES[backbone](width=width, norm=norm, alignment=alignment, in_channels=in_channels)
