"""segmentation_loss against a per-pixel log-softmax computed by hand, and against Caffe's
SoftmaxWithLoss (the release's loss layer) rewritten in numpy."""

import numpy as np
import pytest
import torch

from fcn_lit.data.check import median_frequency_weights
from fcn_lit.training.losses import segmentation_loss


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 5, 9, 11, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 5, (2, 9, 11), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.3] = 255
    return logits, target


def per_pixel_losses(
    logits: torch.Tensor, target: torch.Tensor, kept: torch.Tensor
) -> list[torch.Tensor]:
    """-log softmax of the true class at every kept labelled pixel, one pixel at a time."""
    losses = []
    for i, y, x in (kept & (target != 255)).nonzero().tolist():
        scores = logits[i, :, y, x]
        losses.append(-(scores[target[i, y, x]] - scores.exp().sum().log()))
    return losses


@pytest.mark.parametrize("normalize", [True, False])
def test_matches_per_pixel_cross_entropy(normalize: bool) -> None:
    logits, target = batch()
    losses = per_pixel_losses(logits, target, torch.ones_like(target, dtype=torch.bool))
    expected = sum(losses) / len(losses) if normalize else sum(losses) / target.shape[0]
    result = segmentation_loss(logits, target, normalize=normalize)
    torch.testing.assert_close(result, expected)
    (grad,) = torch.autograd.grad(result, logits)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize(("normalize", "cell"), [(True, 1), (False, 1), (True, 4)])
def test_loss_sampling_keeps_cells_with_probability_p(normalize: bool, cell: int) -> None:
    logits, target = batch(1)
    torch.manual_seed(7)
    result = segmentation_loss(logits, target, normalize=normalize, sample_p=0.5, sample_cell=cell)
    torch.manual_seed(7)  # the same draw, repeated by hand
    cells = torch.rand(2, -(-9 // cell), -(-11 // cell)) < 0.5
    kept = torch.zeros_like(target, dtype=torch.bool)
    for i, cy, cx in cells.nonzero().tolist():
        kept[i, cy * cell : (cy + 1) * cell, cx * cell : (cx + 1) * cell] = True
    losses = per_pixel_losses(logits, target, kept)
    assert 0 < len(losses) < (target != 255).sum()
    expected = sum(losses) / len(losses) if normalize else sum(losses) / target.shape[0]
    torch.testing.assert_close(result, expected)


@pytest.mark.parametrize("normalize", [True, False])
def test_all_void_batch_gives_a_differentiable_zero(normalize: bool) -> None:
    logits = torch.randn(2, 5, 4, 4, requires_grad=True)
    loss = segmentation_loss(logits, torch.full((2, 4, 4), 255), normalize=normalize)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_sample_p_out_of_range_is_named() -> None:
    logits, target = batch()
    with pytest.raises(ValueError, match="sample_p=0"):
        segmentation_loss(logits, target, sample_p=0)


def caffe_softmax_with_loss(bottom: np.ndarray, label: np.ndarray, normalize: bool, ignore_label: int = 255):
    """Caffe's SoftmaxWithLossLayer, Forward_cpu and Backward_cpu, for (N, C, H, W) scores.

    Loss: sum of -log(max(prob[label], FLT_MIN)) over the non-ignored pixels, divided by the
    normalizer: ``normalize: true`` -> VALID (the count of those pixels), ``normalize: false`` ->
    BATCH_SIZE (outer_num_ = N). Gradient: prob - onehot(label) at counted pixels, 0 at ignored
    ones, times loss_weight / normalizer.
    """
    n, c, h, w = bottom.shape
    shifted = bottom - bottom.max(axis=1, keepdims=True)
    prob = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    loss, count = 0.0, 0
    diff = prob.copy()
    for i in range(n):
        for y in range(h):
            for x in range(w):
                t = int(label[i, y, x])
                if t == ignore_label:
                    diff[i, :, y, x] = 0
                    continue
                loss -= np.log(max(prob[i, t, y, x], np.finfo(np.float32).tiny))
                diff[i, t, y, x] -= 1
                count += 1
    normalizer = max(1.0, float(count)) if normalize else float(n)
    return loss / normalizer, diff / normalizer


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_equals_caffes_softmax_with_loss(normalize: bool, batch_size: int) -> None:
    g = torch.Generator().manual_seed(batch_size)
    logits = torch.randn(batch_size, 4, 5, 7, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 4, (batch_size, 5, 7), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.25] = 255
    expected_loss, expected_grad = caffe_softmax_with_loss(logits.detach().numpy(), target.numpy(), normalize)
    loss = segmentation_loss(logits, target, normalize=normalize)
    loss.backward()
    np.testing.assert_allclose(loss.item(), expected_loss, rtol=1e-12)
    np.testing.assert_allclose(logits.grad.numpy(), expected_grad, rtol=1e-10, atol=1e-15)


def test_summed_loss_of_a_batch_is_the_mean_of_its_images_summed_losses() -> None:
    """Caffe's normalize: false divides by the batch size: the release's lr 1e-10, set for one
    image, stays right at batch N (a batch of copies gives the one image's loss)."""
    logits, target = batch()
    one = segmentation_loss(logits[:1], target[:1], normalize=False)
    copies = segmentation_loss(logits[:1].expand(4, -1, -1, -1), target[:1].expand(4, -1, -1), normalize=False)
    torch.testing.assert_close(copies, one)


def numpy_pixel_losses(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """-log softmax of the true class per pixel (N, H, W), NaN at void pixels."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_prob = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    out = np.full(target.shape, np.nan)
    for i, y, x in zip(*np.nonzero(target != 255)):
        out[i, y, x] = -log_prob[i, target[i, y, x], y, x]
    return out


@pytest.mark.parametrize("normalize", [True, False])
def test_class_weighted_cross_entropy_matches_a_weighted_mean(normalize: bool) -> None:
    logits, target = batch(2)
    weights = [0.5, 2.0, 1.0, 3.0, 0.25]
    losses = numpy_pixel_losses(logits.detach().numpy(), target.numpy())
    labelled = target.numpy() != 255
    w = np.array(weights)[np.where(labelled, target.numpy(), 0)] * labelled
    total = np.nansum(losses * w)
    expected = total / w.sum() if normalize else total / target.shape[0]
    result = segmentation_loss(logits, target, normalize=normalize, class_weights=weights)
    np.testing.assert_allclose(result.item(), expected, rtol=1e-12)
    if normalize:  # torch's own weighted mean agrees
        torch.testing.assert_close(result, torch.nn.functional.cross_entropy(
            logits, target, weight=torch.tensor(weights, dtype=torch.float64), ignore_index=255))
    with pytest.raises(ValueError, match="class_weights has 2 entries for 5 classes"):
        segmentation_loss(logits, target, class_weights=[1.0, 2.0])


@pytest.mark.parametrize(("threshold", "min_kept"), [(0.357, 3), (1.5, 10), (100.0, 4), (0.0, 1000)])
def test_ohem_keeps_pixels_above_the_threshold_and_the_k_hardest_per_image(threshold, min_kept) -> None:
    logits, target = batch(3)
    losses = numpy_pixel_losses(logits.detach().numpy(), target.numpy())
    kept = []
    for image in losses:
        values = image[~np.isnan(image)]
        hardest = np.sort(values)[::-1]
        floor = hardest[min(min_kept, len(values)) - 1]  # the k-th hardest loss
        kept.append(values[(values > threshold) | (values >= floor)])
    kept = np.concatenate(kept)
    assert 0 < len(kept) <= (target != 255).sum()
    result = segmentation_loss(logits, target, name="ohem", ohem_threshold=threshold, ohem_min_kept=min_kept)
    np.testing.assert_allclose(result.item(), kept.mean(), rtol=1e-12)


def test_dice_loss_matches_the_dice_coefficient() -> None:
    logits, target = batch(4)
    prob = torch.softmax(logits, 1).detach().numpy()
    t = target.numpy()
    dices = []
    for c in range(logits.shape[1]):
        p_sum = y_sum = inter = 0.0
        for i, y, x in zip(*np.nonzero(t != 255)):
            p, hit = prob[i, c, y, x], float(t[i, y, x] == c)
            p_sum, y_sum, inter = p_sum + p, y_sum + hit, inter + p * hit
        dices.append((2 * inter + 1) / (p_sum + y_sum + 1))
    result = segmentation_loss(logits, target, name="dice")
    np.testing.assert_allclose(result.item(), 1 - np.mean(dices), rtol=1e-12)
    result.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="model.loss.name='focal'"):
        segmentation_loss(logits, target, name="focal")


def test_median_frequency_weights_follow_eigen_and_fergus() -> None:
    masks = [np.array([[0, 0, 1], [1, 1, 255]]), np.array([[0, 2, 2], [2, 2, 2]]), np.array([[0, 0, 0], [0, 0, 1]])]
    freq = []
    for c in range(4):
        present = [m for m in masks if (m == c).any()]
        freq.append(sum((m == c).sum() for m in present) / sum((m != 255).sum() for m in present) if present else 0)
    median = np.median([f for f in freq if f > 0])
    expected = [median / f if f > 0 else 0.0 for f in freq]
    counts = sum(np.bincount(m.ravel(), minlength=256) for m in masks)[:4]
    image_pixels = sum((np.bincount(m.ravel(), minlength=256)[:4] > 0) * (m != 255).sum() for m in masks)
    np.testing.assert_allclose(median_frequency_weights(counts, image_pixels), expected)
