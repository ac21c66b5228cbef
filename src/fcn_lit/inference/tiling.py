"""Inference beyond one forward pass: sliding windows over images too large to segment at once,
and test-time augmentation (scales and left-right flips), both by averaging logits.

``segment(net, x, Tiling(window=512, stride=341), TTA(scales=(0.5, 1.0, 1.5), flip=True), pad_value)``
gives logits like ``net(x)`` ((N, K, H, W), or a dict of such for multi-head nets); ``Segmenter`` is
the same as a module. predict.py and eval.py build them from their ``tiling`` and ``tta`` settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fcn_lit.data.transforms import Normalization

Logits = Tensor | dict[str, Tensor]


@dataclass(frozen=True)
class Tiling:
    """Windows of ``window`` x ``window`` pixels every ``stride`` pixels (default: two thirds of the
    window); ``window=None`` segments whole images."""

    window: int | None = None
    stride: int | None = None

    def __post_init__(self) -> None:
        if self.window is not None and self.window < 1:
            raise ValueError(f"tiling.window={self.window} must be >= 1 (or null: whole images)")
        if self.stride is not None and (self.window is None or not 1 <= self.stride <= self.window):
            raise ValueError(f"tiling.stride={self.stride} must lie in 1..tiling.window ({self.window}); "
                             "set tiling.window, or leave tiling.stride null (2/3 of the window)")

    @property
    def step(self) -> int:
        return self.stride or max(1, self.window * 2 // 3)


@dataclass(frozen=True)
class TTA:
    """Test-time augmentation: the image at each of ``scales`` (and mirrored left-right with ``flip``),
    logits resized back to the input and averaged."""

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"tta.scales={list(self.scales)} must be a non-empty list of positive factors")

    @property
    def enabled(self) -> bool:
        return self.flip or self.scales != (1.0,)


def _map(fn: Callable[[Tensor], Tensor], logits: Logits) -> Logits:
    return {k: fn(v) for k, v in logits.items()} if isinstance(logits, dict) else fn(logits)


def _heads(logits: Logits) -> list[Tensor]:
    """The logits tensors of one output, in head order."""
    return list(logits.values()) if isinstance(logits, dict) else [logits]


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Offsets of the windows along one axis: every ``stride`` until the window reaches the end
    (the last one may hang past it; the overhang is padded)."""
    if size <= window:
        return [0]
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


def sliding_window(net: Callable[[Tensor], Logits], x: Tensor, window: int, stride: int,
                   pad_value: Tensor | None = None) -> Logits:
    """Logits of ``net`` over ``x`` (N, C, H, W), window by window, overlaps averaged.

    Along an axis no longer than the window the window is the whole axis (so one window covering
    the image gives exactly the whole-image logits); elsewhere windows of ``window`` pixels start
    every ``stride``, and the part of the last one past the image is filled with ``pad_value``
    ((C,), the data set's mean pixel after normalisation; 0 by default). Memory: the window's
    activations plus one float32 (N, K, H, W) sum.
    """
    n, c, h, w = x.shape
    tops, lefts = window_starts(h, window, stride), window_starts(w, window, stride)
    wh, ww = min(h, window), min(w, window)
    fill = (x.new_zeros(c) if pad_value is None else pad_value.to(x)).view(1, c, 1, 1)
    count_h, count_w = torch.zeros(h), torch.zeros(w)  # windows over each row and column
    for top in tops:
        count_h[top : top + wh] += 1
    for left in lefts:
        count_w[left : left + ww] += 1
    total: Logits | None = None
    for top in tops:
        for left in lefts:
            part = x[..., top : top + wh, left : left + ww]
            if part.shape[-2:] != (wh, ww):  # hangs past the border: pad with the mean pixel
                tile = fill.expand(n, c, wh, ww).clone()
                tile[..., : part.shape[-2], : part.shape[-1]] = part
                part = tile
            logits = net(part)
            if total is None:  # allocated now that the classes (and heads) are known
                total = _map(lambda t: t.new_zeros(*t.shape[:2], h, w, dtype=torch.float32), logits)
            for acc, new in zip(_heads(total), _heads(logits), strict=True):
                acc[..., top : top + wh, left : left + ww] += new[..., : h - top, : w - left]
    return _map(lambda t: t.div_(count_h.to(t.device).view(-1, 1)).div_(count_w.to(t.device)), total)


def test_time_augmentation(run: Callable[[Tensor], Logits], x: Tensor, scales: Sequence[float],
                           flip: bool) -> Logits:
    """The mean of ``run``'s logits over ``x`` resized by each scale (bilinear), and mirrored
    left-right with ``flip``, each brought back to the input's size and orientation."""
    size = x.shape[-2:]
    total: Logits | None = None
    views = 0
    for scale in scales:
        scaled_size = tuple(max(1, round(s * scale)) for s in size)
        xs = x if scaled_size == tuple(size) else F.interpolate(x, scaled_size, mode="bilinear", align_corners=False)
        for mirrored in (False, True) if flip else (False,):
            logits = run(xs.flip(-1) if mirrored else xs)

            def back(t: Tensor, mirrored: bool = mirrored) -> Tensor:
                t = t.flip(-1) if mirrored else t
                if t.shape[-2:] != size:
                    t = F.interpolate(t.float(), size, mode="bilinear", align_corners=False)
                return t.float()

            logits = _map(back, logits)
            if total is None:
                total = logits
            else:
                for acc, new in zip(_heads(total), _heads(logits), strict=True):
                    acc.add_(new)
            views += 1
    return _map(lambda t: t.div_(views), total)


def segment(run: Callable[[Tensor], Logits], x: Tensor, tiling: Tiling = Tiling(), tta: TTA = TTA(),
            pad_value: Tensor | None = None) -> Logits:
    """``run`` (a net, or any function from a normalised batch to logits) over ``x``, window by window
    (``tiling``) and over augmented views (``tta``)."""

    def one_view(view: Tensor) -> Logits:
        if tiling.window is None:
            return run(view)
        return sliding_window(run, view, tiling.window, tiling.step, pad_value)

    return test_time_augmentation(one_view, x, tta.scales, tta.flip) if tta.enabled else one_view(x)


class Segmenter(nn.Module):
    """``net`` run by ``segment``: the same interface as the net, float32 logits out."""

    def __init__(self, net: nn.Module, tiling: Tiling = Tiling(), tta: TTA = TTA(), pad_value: Tensor | None = None):
        super().__init__()
        self.net, self.tiling, self.tta = net, tiling, tta
        self.register_buffer("pad_value", pad_value, persistent=False)

    def forward(self, x: Tensor) -> Logits:
        return segment(self.net, x, self.tiling, self.tta, self.pad_value)


def mean_pixel(normalization: Normalization) -> Tensor:
    """The data set's mean pixel (its declared per-modality means; the weights' own mean, 0 after
    normalisation, for modalities without one), normalised as the net's input: the value that pads
    windows past the border."""
    means = dict(normalization.caffe_means)
    raw: list[float] = []
    declared: list[bool] = []
    for modality, channels in normalization.modalities:
        mean = means[modality].values if modality in means else None
        known = mean is not None and len(mean) == channels
        raw += (list(mean[::-1]) if modality == "color" else list(mean)) if known else [0.0] * channels  # colour: BGR
        declared += [known] * channels
    x = normalization(np.asarray(raw, np.float64).reshape(1, 1, -1)).flatten()
    return torch.where(torch.tensor(declared), x, torch.zeros_like(x))
