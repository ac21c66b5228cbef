"""segmentation_loss against a per-pixel log-softmax computed by hand."""

import pytest
import torch

from fcn_lit.losses import segmentation_loss


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
    expected = sum(losses) / len(losses) if normalize else sum(losses)
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
    expected = sum(losses) / len(losses) if normalize else sum(losses)
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
