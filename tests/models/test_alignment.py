"""Alignment: the derived crops equal the Caffe release's, and both modes put every score where
its pixel is -- measured by pushing an x-coordinate ramp through an averaging copy of the net."""

import pytest
import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from fcn_lit.models import build_fcn


def test_caffe_mode_reproduces_the_release_crop_offsets():
    # fcn.berkeleyvision.org: voc-fcn32s crop 19; fcn16s 5, 27; fcn8s 9, 31; voc-fcn-alexnet 18.
    assert build_fcn("vgg16", 32, 21, width=0.0625).head.crop_final == 19
    fcn16 = build_fcn("vgg16", 16, 21, width=0.0625).head
    assert (fcn16.crop_pool4, fcn16.crop_final) == ((0, 5), 27)
    fcn8 = build_fcn("vgg16", 8, 21, width=0.0625).head
    assert (fcn8.crop_pool4, fcn8.crop_pool3, fcn8.crop_final) == ((0, 5), (0, 9), 31)
    assert [fcn8.upscore2.kernel_size[0], fcn8.upscore_pool4.kernel_size[0], fcn8.upscore8.kernel_size[0]] == [4, 4, 16]
    alex = build_fcn("alexnet", 32, 21, width=0.0625).head
    assert (alex.crop_final, alex.upscore.kernel_size[0]) == (18, 63)


def averaging(net: nn.Module) -> nn.Module:
    """Same geometry, but every layer averages: max pools become average pools, convolutions
    average their window and replicate the border, normalisations and residual sums pass the
    mean through. A map then holds, at each pixel, the image x-coordinate of that pixel."""
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.MaxPool2d):
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                   child.ceil_mode, count_include_pad=False))
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.requires_grad:
            k = m.weight[0].numel()
            nn.init.constant_(m.weight, 1 / k)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
            m.padding_mode = "replicate"
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 0.0
        if isinstance(m, Bottleneck):  # residual sum: half the branch plus half the shortcut
            if m.downsample is not None:
                nn.init.constant_(m.bn3.weight, 0.5)
                nn.init.constant_(m.downsample[1].weight, 0.5)
            else:
                nn.init.zeros_(m.bn3.weight)
    return net.eval()


def ramp(width: int, height: int = 8) -> torch.Tensor:
    """Pixels holding their x-coordinate (+1000, to stay positive through the ReLUs)."""
    x = torch.arange(width, dtype=torch.float64) + 1000.0
    return x.expand(1, 3, height, width).contiguous()


@pytest.mark.parametrize("backbone", ["vgg16", "googlenet"])
@pytest.mark.parametrize("alignment", ["caffe", "aligned"])
def test_taps_sit_where_the_coordinate_maps_say(backbone, alignment):
    net = averaging(build_fcn(backbone, 8, 2, width=0.0625, alignment=alignment)).double()
    width = 1800
    with torch.no_grad():
        taps = net.trunk(ramp(width))
    for stride, tap in taps.items():
        coord = net.trunk.coords[stride]
        i = torch.arange(tap.shape[-1], dtype=torch.float64)
        expected = coord.scale * i + coord.offset + 1000
        middle = (expected > 450 + 1000) & (expected < width - 450 + 1000)
        assert middle.sum() >= 2
        torch.testing.assert_close(tap[0, 0, tap.shape[-2] // 2, middle], expected[middle], rtol=0, atol=1e-3)


@pytest.mark.parametrize("backbone", ["vgg16", "alexnet", "googlenet", "resnet50"])
@pytest.mark.parametrize("alignment", ["caffe", "aligned"])
def test_each_skip_lands_on_its_pixels(backbone, alignment):
    """Class k scores only tap k (fc7, pool4, pool3); each comes back at the input's coordinates,
    so every crop offset and upsampling kernel, skips included, is aligned."""
    net = averaging(build_fcn(backbone, 8, 3, width=0.0625, alignment=alignment)).double()
    for k, name in enumerate(("score_fr", "score_pool4", "score_pool3")):
        layer = getattr(net.head, name)
        with torch.no_grad():
            layer.weight.zero_()
            layer.weight[k] = 1 / layer.in_channels
    width = 1800
    with torch.no_grad():
        out = net(ramp(width, height=96))[0, :, 48]
    x = torch.arange(width, dtype=torch.float64) + 1000
    for k in range(3):
        torch.testing.assert_close(out[k, 750:-750], x[750:-750], rtol=0, atol=1e-3)
