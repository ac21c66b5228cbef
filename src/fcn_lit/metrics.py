"""The paper's four metrics (Section 5, score.py) from one confusion matrix per split."""

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric


class SegmentationMetrics(Metric):
    """Pixel accuracy, mean accuracy, mean IU and frequency-weighted IU over a whole split.

    One confusion matrix ``confmat`` (rows = ground truth, columns = prediction) accumulates every
    pixel whose label is in ``[0, num_classes)`` and not ``ignore_index``, exactly as score.py's
    ``fast_hist``; scores are computed once per split, never averaged over images or batches.

    ``score_classes`` restricts scoring to a class subset (SIFT Flow leaves out cow, desert and
    moon, absent from its test set): pixels labelled with another class are not scored, and the
    means run over the subset only; predicting a left-out class still counts as an error.

    SIFT Flow's geometric accuracy is the ``pixel_acc`` of a second instance,
    ``SegmentationMetrics(3)``, fed with the geometric head's logits and labels.

    DDP: ``confmat`` is summed over processes (``dist_reduce_fx="sum"``), so every sample must be
    seen by exactly one process; the DataModule must not pad the evaluation split with duplicates
    as ``DistributedSampler`` does.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    confmat: Tensor

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        score_classes: Sequence[int] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"num_classes={num_classes}: a segmentation needs at least 2 classes")
        if score_classes is not None:
            bad = [c for c in score_classes if not 0 <= c < num_classes]
            if bad or not score_classes:
                raise ValueError(
                    f"score_classes={list(score_classes)}: give a non-empty list of class indices "
                    f"in [0, {num_classes})"
                )
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.score_classes = None if score_classes is None else sorted(set(score_classes))
        zeros = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.add_state("confmat", default=zeros, dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch: ``preds`` logits (N, C, H, W) or classes (N, H, W); ``target`` (N, H, W)."""
        n = self.num_classes
        if preds.dim() == target.dim() + 1:
            if preds.shape[1] != n:
                raise ValueError(f"preds has {preds.shape[1]} channels, expected num_classes={n}")
            preds = preds.max(1).indices  # argmax with the same ties, 4x faster on CPU
        if preds.shape != target.shape:
            raise ValueError(
                f"preds {tuple(preds.shape)} and target {tuple(target.shape)} do not match: "
                "give logits (N, C, H, W) or class indices (N, H, W) with a target (N, H, W)"
            )
        if preds.is_floating_point() or target.is_floating_point():
            raise TypeError(
                "class indices must be integer tensors (logits need a channel dimension)"
            )
        preds, target = preds.long(), target.long()
        low, high = torch.aminmax(preds) if preds.numel() else (0, 0)
        if low < 0 or high >= n:
            raise ValueError(f"predicted classes span [{low}, {high}], expected [0, {n})")
        valid = (target >= 0) & (target < n)
        if 0 <= self.ignore_index < n:
            valid &= target != self.ignore_index
        # Unscored pixels go to an overflow bin n*n: faster than boolean indexing.
        index = torch.where(valid, target * n + preds, n * n)
        counts = torch.bincount(index.flatten(), minlength=n * n + 1)
        self.confmat += counts[: n * n].reshape(n, n)

    def compute(self) -> dict[str, Tensor]:
        """0-dim float64 scores, plus ``per_class_iu`` (C,), NaN where a class is absent; every score
        is NaN when no pixel was scored (a split whose masks are all void)."""
        hist = self.confmat.double()
        diag, gt_pixels, pred_pixels = hist.diag(), hist.sum(1), hist.sum(0)
        acc = diag / gt_pixels  # NaN for a class without ground truth: left out of the mean
        iu = diag / (gt_pixels + pred_pixels - diag)  # NaN for a class absent from both
        scored = slice(None) if self.score_classes is None else self.score_classes
        freq = gt_pixels[scored] / gt_pixels[scored].sum()
        present = freq > 0
        return {
            "pixel_acc": diag[scored].sum() / gt_pixels[scored].sum(),
            "mean_acc": acc[scored].nanmean(),
            "mean_iu": iu[scored].nanmean(),
            # NaN, like the others, when no pixel is scored (a sum over nothing would say 0).
            "fw_iu": (freq[present] * iu[scored][present]).sum() if present.any() else hist.new_tensor(float("nan")),
            "per_class_iu": iu,
        }


def category_iu(confmat: Tensor, categories: Sequence[str]) -> dict[str, Any]:
    """Cityscapes' category IoU from a class confusion matrix (rows = ground truth) and the category
    of each class: per category, its classes' pixels pooled (``getIouScoreForCategory``), and their
    mean over the categories that are not NaN (``getScoreAverage``; NaN: no pixel of it, true or
    predicted). ``mean_category_iu`` a float, ``per_category_iu`` {category: IoU} in first-seen order."""
    if len(categories) != confmat.shape[0]:
        raise ValueError(f"{len(categories)} categories for {confmat.shape[0]} classes: give one per class")
    names = list(dict.fromkeys(categories))
    member = torch.zeros(len(categories), len(names), dtype=torch.float64)
    member[torch.arange(len(categories)), torch.tensor([names.index(c) for c in categories])] = 1
    pooled = member.T @ confmat.double() @ member
    diag = pooled.diag()
    iu = diag / (pooled.sum(1) + pooled.sum(0) - diag)
    return {"mean_category_iu": iu.nanmean().item(), "per_category_iu": dict(zip(names, iu.tolist(), strict=True))}
