"""Heads: bilinear upsampling, zero-initialised scores, frozen deconvolutions, at-once scaling."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fcn_lit.models import bilinear_kernel, build_fcn


@pytest.mark.parametrize("size", [4, 16, 63, 64])
def test_bilinear_kernel_matches_the_release_upsample_filt(size):
    # surgery.upsample_filt of the Caffe release, which initialised its deconvolutions.
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    expected = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    weight = bilinear_kernel(3, size).numpy()
    for i in range(3):
        for j in range(3):
            np.testing.assert_allclose(weight[i, j], expected if i == j else 0, atol=1e-7)


@pytest.mark.parametrize("factor", [2, 8, 32])
def test_bilinear_deconvolution_equals_bilinear_interpolation(factor):
    x = torch.randn(1, 2, 9, 11, dtype=torch.float64)
    up = F.conv_transpose2d(x, bilinear_kernel(2, 2 * factor).double(), stride=factor)
    up = up[..., factor // 2 : factor // 2 + 9 * factor, factor // 2 : factor // 2 + 11 * factor]
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    # Equal away from the border, where interpolate clamps and the deconvolution sees zeros.
    torch.testing.assert_close(up[..., factor:-factor, factor:-factor], ref[..., factor:-factor, factor:-factor])


@pytest.mark.parametrize("stride", [32, 16, 8])
def test_scores_start_at_zero_and_upsampling_is_frozen_bilinear(stride):
    net = build_fcn("vgg16", stride, 4, width=0.0625, alignment="aligned")
    scores = [m for n, m in net.head.named_children() if n.startswith("score")]
    assert len(scores) == {32: 1, 16: 2, 8: 3}[stride]
    for layer in scores:
        assert not layer.weight.any() and not layer.bias.any()
    ups = [m for n, m in net.head.named_children() if n.startswith("upscore")]
    assert len(ups) == {32: 1, 16: 2, 8: 3}[stride]
    for up in ups:
        assert not up.weight.requires_grad and up.bias is None
        torch.testing.assert_close(up.weight, bilinear_kernel(4, up.kernel_size[0]))
    assert not net(torch.randn(2, 3, 37, 45)).any()  # zero logits at init: uniform softmax


def test_learnable_upsampling_trains_the_deconvolutions():
    net = build_fcn("vgg16", 8, 4, width=0.0625, alignment="aligned", learnable_upsampling=True)
    ups = [m for n, m in net.head.named_children() if n.startswith("upscore")]
    assert all(up.weight.requires_grad for up in ups)


def test_at_once_scales_pool4_and_pool3_before_scoring():
    torch.manual_seed(0)
    net = build_fcn("vgg16", 8, 3, width=0.0625, alignment="aligned", at_once=True).eval()
    seen = {}
    for name in ("score_pool4", "score_pool3"):
        getattr(net.head, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, i[0]))
    x = torch.randn(1, 3, 40, 40)
    taps = net.trunk(x)
    net(x)
    torch.testing.assert_close(seen["score_pool4"], taps[16] * 0.01)
    torch.testing.assert_close(seen["score_pool3"], taps[8] * 0.0001)
