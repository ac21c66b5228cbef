"""Per-pixel softmax cross-entropy (Section 3.4), normalized or summed, with loss sampling."""

import torch
import torch.nn.functional as F
from torch import Tensor


def segmentation_loss(
    logits: Tensor,
    target: Tensor,
    *,
    normalize: bool = True,
    sample_p: float | None = None,
    sample_cell: int = 1,
    ignore_index: int = 255,
) -> Tensor:
    """Cross-entropy of logits (N, C, H, W) against labels (N, H, W), void pixels left out.

    ``normalize=True`` averages over the labelled pixels of the batch (Caffe's ``normalize: true``,
    VALID normalization); ``False`` sums them and divides by the batch size, as Caffe's
    ``normalize: false`` (BATCH_SIZE normalization) of the release's "heavy" recipes does: their lr
    of 1e-10 is for the loss summed over one image's pixels, whatever the batch size. ``sample_p`` is the paper's
    loss sampling (Section 4.3): each ``sample_cell`` x ``sample_cell`` cell of the output keeps its
    loss with probability p (cell 32 = a final-layer cell of FCN-32s); a normalized loss then
    divides by the kept labelled pixels. A batch without labelled pixels gives a differentiable 0.
    """
    if sample_p is not None and not 0 < sample_p <= 1:
        raise ValueError(f"sample_p={sample_p}: the kept fraction must lie in (0, 1], or be None")
    pixel_loss = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    keep = target != ignore_index
    if sample_p is not None:
        n, h, w = target.shape
        cells = (n, -(-h // sample_cell), -(-w // sample_cell))
        kept = torch.rand(cells, device=target.device) < sample_p
        kept = kept.repeat_interleave(sample_cell, 1).repeat_interleave(sample_cell, 2)
        keep &= kept[:, :h, :w]
    total = torch.where(keep, pixel_loss, 0.0).sum()
    return total / keep.sum().clamp(min=1) if normalize else total / target.shape[0]
