"""Per-pixel softmax cross-entropy (Section 3.4), normalized or summed, with loss sampling; and,
beyond the paper, losses for imbalanced classes: class-weighted cross-entropy (weights given or by
median frequency balancing), OHEM and Dice."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


LOSSES = ("cross_entropy", "ohem", "dice")


def segmentation_loss(
    logits: Tensor,
    target: Tensor,
    *,
    name: str = "cross_entropy",
    normalize: bool = True,
    sample_p: float | None = None,
    sample_cell: int = 1,
    class_weights: Sequence[float] | Tensor | None = None,
    ohem_threshold: float = 0.357,
    ohem_min_kept: int = 100_000,
    dice_smooth: float = 1.0,
    ignore_index: int = 255,
) -> Tensor:
    """Loss of logits (N, C, H, W) against labels (N, H, W), void pixels left out.

    ``name="cross_entropy"`` (the paper's). ``normalize=True`` averages over the labelled pixels of
    the batch (Caffe's ``normalize: true``, VALID normalization); ``False`` sums them and divides by
    the batch size, as Caffe's ``normalize: false`` (BATCH_SIZE normalization) of the release's
    "heavy" recipes does: their lr of 1e-10 is for the loss summed over one image's pixels, whatever
    the batch size. ``sample_p`` is the paper's loss sampling (Section 4.3): each ``sample_cell`` x
    ``sample_cell`` cell of the output keeps its loss with probability p (cell 32 = a final-layer
    cell of FCN-32s); a normalized loss then divides by the kept labelled pixels. A batch without
    labelled pixels gives a differentiable 0.

    ``class_weights`` (one per class) scale each pixel's cross-entropy by its true class's weight;
    the normalized loss then divides by the summed weights (torch's weighted mean).
    ``name="ohem"``: the cross-entropy of the hard pixels only, those whose loss exceeds
    ``ohem_threshold`` (0.357 = a true-class probability below 0.7), and at least the
    ``ohem_min_kept`` hardest of each image. ``name="dice"``: 1 - the mean over classes of the soft
    Dice coefficient (2 sum p y + s) / (sum p + sum y + s) over the batch's labelled pixels.
    """
    if name not in LOSSES:
        raise ValueError(f"model.loss.name={name!r} is not one of {list(LOSSES)}")
    if sample_p is not None and not 0 < sample_p <= 1:
        raise ValueError(f"sample_p={sample_p}: the kept fraction must lie in (0, 1], or be None")
    keep = target != ignore_index
    if name == "dice":
        if sample_p is not None or class_weights is not None:
            raise ValueError("model.loss.name=dice takes neither sample_p nor class_weights; set them to null")
        return dice_loss(logits, target, keep, dice_smooth)
    weight = None
    if class_weights is not None:
        weight = torch.as_tensor(class_weights, dtype=logits.dtype, device=logits.device)
        if weight.shape != (logits.shape[1],):
            raise ValueError(f"model.loss.class_weights has {weight.numel()} entries for {logits.shape[1]} classes; "
                             "give one per class, or median_frequency")
    pixel_loss = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    if sample_p is not None:
        n, h, w = target.shape
        cells = (n, -(-h // sample_cell), -(-w // sample_cell))
        kept = torch.rand(cells, device=target.device) < sample_p
        kept = kept.repeat_interleave(sample_cell, 1).repeat_interleave(sample_cell, 2)
        keep &= kept[:, :h, :w]
    if name == "ohem":
        keep &= hard_pixels(pixel_loss.detach(), keep, ohem_threshold, ohem_min_kept)
    pixel_weight = keep.to(logits.dtype)
    if weight is not None:
        pixel_weight = pixel_weight * weight[torch.where(keep, target, 0)]
    total = (pixel_loss * pixel_weight).sum()
    return total / pixel_weight.sum().clamp(min=1e-12 if weight is not None else 1) if normalize \
        else total / target.shape[0]


def hard_pixels(pixel_loss: Tensor, keep: Tensor, threshold: float, min_kept: int) -> Tensor:
    """The labelled pixels whose loss exceeds `threshold`, and at least the `min_kept` hardest of
    each image (all of its labelled pixels if it has fewer)."""
    hard = keep & (pixel_loss > threshold)
    ranked = torch.where(keep, pixel_loss, -1.0).flatten(1)
    k = min(min_kept, ranked.shape[1])
    if k > 0:
        top = torch.zeros_like(ranked, dtype=torch.bool).scatter_(1, ranked.topk(k, dim=1).indices, True)
        hard |= top.view_as(keep) & keep
    return hard


def dice_loss(logits: Tensor, target: Tensor, keep: Tensor, smooth: float) -> Tensor:
    probs = logits.softmax(1) * keep.unsqueeze(1)
    onehot = F.one_hot(torch.where(keep, target, 0), logits.shape[1]).movedim(-1, 1) * keep.unsqueeze(1)
    inter = (probs * onehot).sum((0, 2, 3))
    dice = (2 * inter + smooth) / (probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + smooth)
    return 1 - dice.mean()
