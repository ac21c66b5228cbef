"""The CaffeNet trunk (the release's FCN-AlexNet, CVPR Table 1) against Caffe's layers written out
here: its LRN formula in numpy, and a whole voc-fcn-alexnet forward in torch.nn.functional with a
Caffe-layout state dict."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fcn_lit.models import build_fcn, build_trunk
from fcn_lit.models.pretrained import imagenet_state_dict, load_caffe_layers, load_imagenet

# bvlc_reference_caffenet's blobs as a Caffe -> torch converter names them (fc8 is dropped).
CAFFENET_BLOBS = {
    "conv1": (96, 3, 11, 11), "conv2": (256, 48, 5, 5), "conv3": (384, 256, 3, 3),
    "conv4": (384, 192, 3, 3), "conv5": (256, 192, 3, 3), "fc6": (4096, 9216), "fc7": (4096, 4096),
    "fc8": (1000, 4096),
}


def caffe_lrn(bottom: np.ndarray, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
    """Caffe's LRNLayer::CrossChannelForward_cpu: scale = k + alpha / size * (sum of squares over
    channels c - (size - 1) / 2 ... c + (size - 1) / 2, zero-padded); top = bottom * scale^-beta."""
    n, c, h, w = bottom.shape
    pre_pad = (size - 1) // 2
    padded = np.zeros((n, c + size - 1, h, w), dtype=np.float64)
    padded[:, pre_pad:pre_pad + c] = bottom.astype(np.float64) ** 2
    scale = np.full(bottom.shape, k, dtype=np.float64)
    for ch in range(c):
        scale[:, ch] += alpha / size * padded[:, ch:ch + size].sum(axis=1)
    return bottom * scale ** -beta


def test_lrn_is_caffes():
    trunk = build_trunk("caffenet", width=0.125)
    x = torch.randn(2, 96, 5, 6, dtype=torch.float64) * 60  # large enough that LRN scales by ~0.5
    with torch.no_grad():
        for norm in (trunk.stride8.norm1, trunk.stride16.norm2):
            got = norm(x).numpy()
            np.testing.assert_allclose(got, caffe_lrn(x.numpy()), rtol=1e-12)
    assert not np.allclose(caffe_lrn(x.numpy()), x.numpy(), rtol=0.1)


def caffe_state_dict(seed=0, width=1.0):
    g = torch.Generator().manual_seed(seed)
    state = {}
    for layer, full in CAFFENET_BLOBS.items():
        shape = (full[0] if layer == "fc8" else round(full[0] * width),
                 *(round(c * width) if layer not in ("conv1", "fc6") else c for c in full[1:2]), *full[2:])
        if layer == "fc6":
            shape = (round(4096 * width), round(256 * width) * 36)
        fan_in = int(np.prod(shape[1:]))
        state[f"{layer}.weight"] = torch.randn(shape, generator=g) * (2 / fan_in) ** 0.5
        state[f"{layer}.bias"] = torch.randn(shape[0], generator=g) * 0.1
    return state


def lrn(x):
    """Caffe's LRN in torch, written out: zero-padded window of 5 channels."""
    squares = F.pad(x.pow(2), (0, 0, 0, 0, 2, 2))
    window = sum(squares[:, i:i + x.shape[1]] for i in range(5))
    return x / (1 + 1e-4 / 5 * window) ** 0.75


def bilinear(channels, size):
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float64)
    filt = 1 - (og - center).abs() / factor
    weight = torch.zeros(channels, channels, size, size, dtype=torch.float64)
    weight[range(channels), range(channels)] = torch.outer(filt, filt)
    return weight


def voc_fcn_alexnet_forward(sd, score_fr, x):
    """The release's voc-fcn-alexnet train.prototxt, layer by layer (dropout off)."""
    def conv(h, n, **kw):
        weight = sd[f"{n}.weight"]  # fc6 (out, 256 * 6 * 6), fc7 (out, in): Caffe's InnerProduct
        if weight.dim() == 2:
            weight = weight.reshape(weight.shape[0], -1, 6, 6) if n == "fc6" else weight[..., None, None]
        return F.relu(F.conv2d(h, weight, sd[f"{n}.bias"], **kw))

    pool = lambda h: F.max_pool2d(h, 3, 2, ceil_mode=True)  # noqa: E731
    h = lrn(pool(conv(x, "conv1", stride=4, padding=100)))
    h = lrn(pool(conv(h, "conv2", padding=2, groups=2)))
    h = conv(h, "conv3", padding=1)
    h = conv(h, "conv4", padding=1, groups=2)
    h = pool(conv(h, "conv5", padding=1, groups=2))
    fc7 = conv(conv(h, "fc6"), "fc7")
    score = F.conv2d(fc7, *score_fr)
    up = F.conv_transpose2d(score, bilinear(score.shape[1], 63), stride=32)
    return fc7, up[:, :, 18:18 + x.shape[2], 18:18 + x.shape[3]]


def test_full_width_trunk_has_caffenets_blobs():
    with torch.device("meta"):  # shapes only, no memory
        trunk = build_trunk("caffenet", alignment="caffe")
    convs = {n.split(".")[-1]: m for n, m in trunk.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert {n: (m.weight.numel(), m.groups) for n, m in convs.items()} == {
        n: (int(np.prod(shape)), 2 if n in ("conv2", "conv4", "conv5") else 1)
        for n, shape in CAFFENET_BLOBS.items() if n != "fc8"}
    assert [type(m).__name__ for m in trunk.stride8] == ["Conv2d", "ReLU", "MaxPool2d", "LocalResponseNorm"]


def test_fcn_caffenet_with_caffe_weights_is_the_releases_fcn_alexnet(tmp_path):
    width = 0.25  # the layout scaled down (two groups kept); full-width shapes: the test above
    sd = caffe_state_dict(width=width)
    torch.save(sd, tmp_path / "caffenet.pth")
    net = build_fcn("caffenet", 32, 21, width=width, alignment="caffe")
    # What build_fcn(pretrained=True, weights="caffe") does with a full-width file (fc8 dropped).
    load_imagenet(net.trunk, "caffenet", imagenet_state_dict("caffenet", "caffe", str(tmp_path / "caffenet.pth")))
    net = net.eval().double()
    sd = {k: v.double() for k, v in sd.items()}  # float64 on both sides: equal to rounding
    # The geometry comes out of alignment.py: upscore kernel 63, crop 18 (the release's numbers).
    assert net.head.upscore.kernel_size == (63, 63) and net.head.crop_final == 18
    g = torch.Generator().manual_seed(1)
    score_fr = (torch.randn(21, 1024, 1, 1, generator=g, dtype=torch.float64) * 0.01,
                torch.randn(21, generator=g, dtype=torch.float64))
    with torch.no_grad():
        net.head.score_fr.weight.copy_(score_fr[0])
        net.head.score_fr.bias.copy_(score_fr[1])
        x = torch.randn(1, 3, 67, 50, generator=g, dtype=torch.float64) * 50  # BGR minus mean scale
        fc7, logits = voc_fcn_alexnet_forward(sd, score_fr, x)
        torch.testing.assert_close(net.trunk(x)[32], fc7, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(net(x), logits, rtol=1e-10, atol=1e-10)


def test_caffenet_weights_are_caffes_and_must_match_the_layout(tmp_path):
    with pytest.raises(ValueError, match="Caffe ImageNet weights only"):
        build_fcn("caffenet", 32, 21, pretrained=True, weights="torchvision")
    trunk = build_trunk("caffenet", width=0.125)
    sd = caffe_state_dict(width=0.125)
    load_caffe_layers(trunk, {k: v for k, v in sd.items() if not k.startswith("fc8")})
    torch.testing.assert_close(trunk.stride32.fc6.weight, sd["fc6.weight"].reshape(512, 32, 6, 6), rtol=0, atol=0)
    del sd["conv4.bias"]
    with pytest.raises(ValueError, match="missing.*conv4.bias.*unexpected.*fc8"):
        load_caffe_layers(trunk, sd)
    with pytest.raises(FileNotFoundError, match="caffenet.*weights_path"):
        build_fcn("caffenet", 32, 21, pretrained=True, weights="caffe", weights_path=str(tmp_path / "none.pth"))


def test_parameter_count_is_table_1s_57m():
    with torch.device("meta"):
        fcn = build_fcn("caffenet", 32, 21)
    learned = sum(p.numel() for p in fcn.parameters() if p.requires_grad)
    blobs = sum(int(np.prod(s)) + s[0] for n, s in CAFFENET_BLOBS.items() if n != "fc8") + 4096 * 21 + 21
    assert learned == blobs and round(blobs / 1e6) == 57
