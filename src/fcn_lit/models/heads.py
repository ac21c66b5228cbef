"""Skip heads for strides 32, 16 and 8 (paper Section 4.2, Figure 3).

Scores at stride 32 are upsampled 2x and summed with scores of the pool4 tap, again with pool3,
then upsampled to the input. Score layers start at zero, upsampling starts as bilinear
interpolation; kernels and crops come from the trunk's coordinates (``alignment.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fcn_lit.models.alignment import Coord, crop_offsets, upsampling

STRIDES = (32, 16, 8)
FINAL_UPSCORE = {32: "upscore", 16: "upscore16", 8: "upscore8"}
# FCN-8s at once (TPAMI Section 4.2): skip features scaled down so all strides train together.
AT_ONCE_SCALE = {16: 0.01, 8: 0.0001}


def bilinear_kernel(channels: int, size: int) -> Tensor:
    """(channels, channels, size, size) weights of a transposed conv that interpolates each
    channel bilinearly on its own (Caffe's bilinear filler, placed on the diagonal)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float64)
    filt = 1 - (og - center).abs() / factor
    weight = torch.zeros(channels, channels, size, size, dtype=torch.float64)
    weight[range(channels), range(channels)] = torch.outer(filt, filt)
    return weight.float()


class Upsample(nn.ConvTranspose2d):
    """Transposed conv, stride ``factor``, no bias, initialised to bilinear interpolation and
    frozen unless ``learnable`` (the reference release trains it with lr 0)."""

    def __init__(self, channels: int, factor: int, kernel: int, learnable: bool = False):
        super().__init__(channels, channels, kernel, stride=factor, bias=False)
        with torch.no_grad():
            self.weight.copy_(bilinear_kernel(channels, kernel))
        self.weight.requires_grad_(learnable)


def score_layer(in_channels: int, num_classes: int) -> nn.Conv2d:
    """1x1 class scores, initialised to zero (paper Section 4.1)."""
    layer = nn.Conv2d(in_channels, num_classes, 1)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def crop(x: Tensor, top_left: int, size: tuple[int, int]) -> Tensor:
    return x[..., top_left : top_left + size[0], top_left : top_left + size[1]]


def sum_shared(up: Tensor, skip: Tensor, offsets: tuple[int, int]) -> Tensor:
    """Sum two score maps over the image region they share (max fusion hurt, Section 4.2)."""
    o_up, o_skip = offsets
    size = (
        min(up.shape[-2] - o_up, skip.shape[-2] - o_skip),
        min(up.shape[-1] - o_up, skip.shape[-1] - o_skip),
    )
    return crop(up, o_up, size) + crop(skip, o_skip, size)


class SkipHead(nn.Module):
    """FCN-32s, -16s or -8s on a trunk's taps: ``forward(taps, size)`` gives logits of ``size``."""

    def __init__(
        self,
        channels: dict[int, int],
        coords: dict[int, Coord],
        num_classes: int,
        stride: int = 8,
        *,
        at_once: bool = False,
        learnable_upsampling: bool = False,
    ):
        super().__init__()
        if stride not in STRIDES:
            raise ValueError(f"stride={stride!r} is not one of {STRIDES}")
        self.stride, self.at_once = stride, at_once
        self.skip_scale = AT_ONCE_SCALE if at_once else {16: 1.0, 8: 1.0}
        self.score_fr = score_layer(channels[32], num_classes)
        coord = coords[32]
        if stride <= 16:
            kernel, up = upsampling(coord, 2, coords[16])
            self.upscore2 = Upsample(num_classes, 2, kernel, learnable_upsampling)
            self.score_pool4 = score_layer(channels[16], num_classes)
            self.crop_pool4 = crop_offsets(up, coords[16])
            coord = max(up, coords[16], key=lambda c: c.offset)
        if stride == 8:
            kernel, up = upsampling(coord, 2, coords[8])
            self.upscore_pool4 = Upsample(num_classes, 2, kernel, learnable_upsampling)
            self.score_pool3 = score_layer(channels[8], num_classes)
            self.crop_pool3 = crop_offsets(up, coords[8])
            coord = max(up, coords[8], key=lambda c: c.offset)
        kernel, up = upsampling(coord, stride, Coord())
        self.add_module(FINAL_UPSCORE[stride], Upsample(num_classes, stride, kernel, learnable_upsampling))
        self.crop_final, behind = crop_offsets(up, Coord())
        if behind:
            raise ValueError(f"final upsampling starts {behind} px inside the image; it must cover it")

    def fuse(self, taps: dict[int, Tensor]) -> Tensor:
        """Class scores at the head's stride, skips fused (before the final upsampling)."""
        score = self.score_fr(taps[32])
        if self.stride <= 16:
            score_pool4 = self.score_pool4(taps[16] * self.skip_scale[16])
            score = sum_shared(self.upscore2(score), score_pool4, self.crop_pool4)
        if self.stride == 8:
            score_pool3 = self.score_pool3(taps[8] * self.skip_scale[8])
            score = sum_shared(self.upscore_pool4(score), score_pool3, self.crop_pool3)
        return score

    def upsample(self, score: Tensor, size: tuple[int, int]) -> Tensor:
        """Final upsampling to the input, cropped to its ``size``."""
        out = crop(self.get_submodule(FINAL_UPSCORE[self.stride])(score), self.crop_final, size)
        if tuple(out.shape[-2:]) != tuple(size):
            raise RuntimeError(f"upsampled scores {tuple(out.shape[-2:])} do not cover the input {tuple(size)}")
        return out

    def forward(self, taps: dict[int, Tensor], size: tuple[int, int]) -> Tensor:
        return self.upsample(self.fuse(taps), size)
