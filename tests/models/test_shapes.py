"""Output shape equals input shape for every trunk x stride x alignment, odd, tiny and large."""

import pytest
import torch

from fcn_lit.models import BACKBONES, build_fcn

SIZES = [(1, 1), (7, 3), (33, 50)]  # tiny, odd, neither a multiple of 32


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("alignment", ["caffe", "aligned"])
@pytest.mark.parametrize("stride", [32, 16, 8])
def test_logits_match_the_input_size(backbone, alignment, stride):
    net = build_fcn(backbone, stride, 3, width=0.0625, alignment=alignment, norm="batch").eval()
    with torch.no_grad():
        for h, w in SIZES:
            assert net(torch.randn(2, 3, h, w)).shape == (2, 3, h, w)


@pytest.mark.parametrize("alignment", ["caffe", "aligned"])
def test_large_input(alignment):
    net = build_fcn("vgg16", 8, 3, width=0.0625, alignment=alignment).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 501, 333)).shape == (1, 3, 501, 333)


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_full_width_trunk(backbone):
    net = build_fcn(backbone, 8, 21, alignment="aligned").eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 35, 17)).shape == (1, 21, 35, 17)
