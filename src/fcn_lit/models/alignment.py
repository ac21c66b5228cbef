"""Where every feature-map pixel sits in the input image, and the crops that follow from it.

A map pixel ``i`` lies at image coordinate ``scale * i + offset`` (the forward form of Caffe's
``coord_map.py``). The trunks are walked layer by layer to get the coordinates of their taps, and
the heads derive their upsampling kernels and crop offsets from those coordinates, so the Caffe
release's numbers (VGG16: 19; 5, 27; 9, 31 -- AlexNet: 18) come out of this module instead of
being literals. The two alignment modes differ only in the padding rules below.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torchvision.models.googlenet import Inception
from torchvision.models.resnet import Bottleneck

ALIGNMENTS = ("caffe", "aligned")
# The Caffe release pads conv1 by 100 so that every input size, 1x1 included, reaches fc6.
CAFFE_PADDING = 100


def check_alignment(alignment: str) -> None:
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment={alignment!r} is not one of {ALIGNMENTS}")


def first_conv_padding(alignment: str, kernel: int) -> int:
    """conv1 padding: 100 in Caffe mode, 'same' (kernel // 2) in aligned mode."""
    return CAFFE_PADDING if alignment == "caffe" else kernel // 2


def fc_padding(alignment: str, kernel: int) -> int:
    """Convolutionalized fc6 padding: none in Caffe mode; kernel // 2 in aligned mode so that fc6
    keeps at least one output on maps smaller than its kernel."""
    return 0 if alignment == "caffe" else kernel // 2


def max_pool(alignment: str, kernel: int, stride: int) -> nn.MaxPool2d:
    """Caffe pools round up (ceil mode, no padding); aligned pools give ceil(n / stride) outputs
    for every n >= 1 (kernel 2: ceil mode; kernel 3: padding 1)."""
    if alignment == "caffe" or kernel == stride:
        return nn.MaxPool2d(kernel, stride, ceil_mode=True)
    return nn.MaxPool2d(kernel, stride, padding=(kernel - 1) // 2)


@dataclass(frozen=True)
class Coord:
    """Map pixel ``i`` sits at image coordinate ``scale * i + offset``."""

    scale: float = 1.0
    offset: float = 0.0

    def through(self, kernel: int, stride: int, padding: int) -> Coord:
        """Coordinates after a convolution or pooling window."""
        return Coord(self.scale * stride, self.offset + self.scale * ((kernel - 1) / 2 - padding))

    def upsampled(self, kernel: int, stride: int) -> Coord:
        """Coordinates after a transposed convolution (no padding)."""
        scale = self.scale / stride
        return Coord(scale, self.offset - scale * (kernel - 1) / 2)


def _first(value: int | tuple[int, ...]) -> int:
    return value if isinstance(value, int) else value[0]


def coord_map(module: nn.Module, coord: Coord = Coord()) -> Coord:
    """Compose the coordinate maps of ``module``'s layers, in order, starting from ``coord``."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return coord.through(
            _first(module.kernel_size), _first(module.stride), _first(module.padding)
        )
    if isinstance(module, Bottleneck):  # the shortcut only subsamples, like the main path
        return coord_map(nn.Sequential(module.conv1, module.conv2, module.conv3), coord)
    if isinstance(module, Inception):  # parallel branches, concatenated: they must agree
        branches = {coord_map(b, coord) for b in (module.branch1, module.branch2, module.branch3, module.branch4)}
        if len(branches) != 1:
            raise ValueError(f"Inception branches disagree on coordinates: {branches}")
        return branches.pop()
    for child in module.children():
        coord = coord_map(child, coord)
    return coord


def upsampling(coarse: Coord, factor: int, target: Coord) -> tuple[int, Coord]:
    """Kernel of a stride-``factor`` transposed conv whose output grid falls on ``target``'s grid.

    Kernel 2f (VGG16's 64, 4, 32, 16) when the coarse pixels sit between fine ones, else 2f - 1
    (AlexNet's 63). Returns the kernel and the coordinates of the upsampled map.
    """
    for kernel in (2 * factor, 2 * factor - 1):
        up = coarse.upsampled(kernel, factor)
        if up.scale == target.scale and ((target.offset - up.offset) / up.scale).is_integer():
            return kernel, up
    raise ValueError(f"no upsampling by {factor} maps {coarse} onto {target}")


def crop_offsets(a: Coord, b: Coord) -> tuple[int, int]:
    """Offsets into maps ``a`` and ``b`` (same scale) of the first pixel they share: the map that
    starts later in the image is not cropped, the other one is cropped by the difference."""
    shift = (b.offset - a.offset) / a.scale
    if a.scale != b.scale or not shift.is_integer():
        raise ValueError(f"maps {a} and {b} are not on one pixel grid")
    return (int(shift), 0) if shift >= 0 else (0, int(-shift))
