"""The release's .caffemodel files read without Caffe: every net of fcn.berkeleyvision.org, written
by the test's own protobuf writer with random weights (full size: the release fixes the shapes),
gives the logits of a numpy forward of its Caffe layers (tests/models/caffe_nets.py). Inputs are
small (20x27: padding 100 makes every size reach fc6) and each trunk is built and run once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caffe_nets import CaffeLayer, conv, forward, release_net, trunk, write_caffemodel, write_prototxt
from fcn_lit.models import LateFusionFCN, MultiHeadFCN, build_fcn, from_caffemodel
from fcn_lit.models.caffe.layers import CaffeModelError

VGG16_NETS = ["voc-fcn32s", "voc-fcn16s", "voc-fcn8s", "voc-fcn8s-atonce", "pascalcontext-fcn32s",
              "pascalcontext-fcn16s", "pascalcontext-fcn8s", "siftflow-fcn32s", "siftflow-fcn16s", "siftflow-fcn8s",
              "nyud-fcn32s-color", "nyud-fcn32s-hha"]
# In trunk order, so that each trunk is built once (caffe_nets.trunk keeps the last one).
NETS = VGG16_NETS + ["nyud-fcn32s-color-d", "nyud-fcn32s-color-hha", "voc-fcn-alexnet"]
SIZE = (20, 27)


def inputs(kind: str) -> dict[str, np.ndarray]:
    """Caffe-mode inputs (BGR 0..255 minus a mean: values of tens) for a trunk's data layers."""
    rng = np.random.default_rng(7)
    image = lambda channels: (rng.standard_normal((1, channels, *SIZE)) * 50).astype(np.float32)  # noqa: E731
    if kind == "vgg16-bgrd":
        return {"color": image(3), "depth": image(1)}
    if kind == "vgg16-color-hha":
        return {"color": image(3), "hha": image(3)}
    return {"data": image(3)}


_trunk_blobs: dict[str, dict[str, np.ndarray]] = {}


def reference(name: str) -> dict[str, np.ndarray]:
    """Every blob of the numpy forward of release net ``name`` (the trunk's run once per kind)."""
    before, kind, after = release_net(name)
    if kind not in _trunk_blobs:
        _trunk_blobs.clear()
        _trunk_blobs[kind] = forward(before + list(trunk(kind)), inputs(kind))
    return forward(after, _trunk_blobs[kind])


def assert_logits_equal(got: torch.Tensor, want: np.ndarray) -> None:
    got = got.detach().numpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert (got.argmax(1) == want.argmax(1)).all()


@pytest.mark.slow  # full-size files: 0.2-0.5 GB written and read per net
@pytest.mark.parametrize("name", NETS)
def test_release_net_computes_caffes_logits(name, tmp_path):
    before, kind, after = release_net(name)
    path = tmp_path / f"{name}.caffemodel"
    write_caffemodel(path, before + list(trunk(kind)) + after)
    try:
        net = from_caffemodel(path)
    finally:
        path.unlink()  # 0.2-0.5 GB each
    blobs = reference(name)
    x = torch.from_numpy(np.concatenate(list(inputs(kind).values()), axis=1))
    with torch.no_grad():
        out = net(x)
    if name.startswith("siftflow"):
        assert isinstance(net, MultiHeadFCN)
        assert_logits_equal(out["semantic"], blobs["score_sem"])
        assert_logits_equal(out["geometric"], blobs["score_geo"])
    else:
        assert isinstance(net, LateFusionFCN) == name.endswith("color-hha")
        assert_logits_equal(out, blobs["score"])


def shapes_only(layers: list[CaffeLayer]) -> list[CaffeLayer]:
    """The layers with tiny stand-in blobs that keep what recognition reads (conv1_1's input
    channels, score_fr's outputs): for the errors found before any weight is loaded."""
    def tiny(blob: np.ndarray) -> np.ndarray:
        return np.zeros(blob.shape[:2] + (1,) * (blob.ndim - 2) if blob.ndim > 1 else blob.shape, np.float32)
    return [CaffeLayer(l.name, l.type, l.bottoms, l.tops, l.params,
                       [tiny(b) if b.ndim < 2 or b.shape[1] <= 4 or l.name.startswith("score") else
                        np.zeros((b.shape[0],) + (1,) * (b.ndim - 1), np.float32) for b in l.blobs])
            for l in layers]


@pytest.fixture(scope="module")
def fcn32s_layers() -> list[CaffeLayer]:
    before, kind, after = release_net("voc-fcn32s")
    return shapes_only(before + list(trunk(kind)) + after)


def test_wrong_blob_shapes_are_named(fcn32s_layers, tmp_path):
    write_caffemodel(tmp_path / "small.caffemodel", fcn32s_layers)
    with pytest.raises(CaffeModelError, match=r"small.caffemodel: layer 'conv1_1' \(Convolution\) has a blob of "
                                              r"shape \(64, 3, 1, 1\), not \(64, 3, 3, 3\)"):
        from_caffemodel(tmp_path / "small.caffemodel")


@pytest.mark.parametrize("change, message", [
    (lambda ls: ls.insert(next(i for i, l in enumerate(ls) if l.name == "fc6"),
                          conv("conv6", "pool5", 512, 512, 3, _Zeros(), pad=1)[0]),
     r"stopped at layer 'conv6' \(Convolution, \(512, 512, 3, 3\), \(512,\)\): it is not a layer of voc-fcn32s"),
    (lambda ls: _layer(ls, "pool1").params.update(kernel=3),
     r"layer 'pool1' \(Pooling\) has kernel \(3, 3\), not \(2, 2\)"),
    (lambda ls: _layer(ls, "score").params.update(offset=20),
     r"layer 'score' \(Crop\) has offset \[20, 20\], not \[19, 19\]"),
    (lambda ls: setattr(_layer(ls, "relu3_2"), "type", "Sigmoid"),
     r"layer 'relu3_2' \(Sigmoid\) is a Sigmoid layer, not ReLU"),
    (lambda ls: ls.remove(_layer(ls, "pool4")), r"has no layer 'pool4' \(Pooling\)"),
    (lambda ls: ls.remove(_layer(ls, "score_fr")), r"stopped at layer 'upscore'.*no score_fr.*weights_path"),
    (lambda ls: [_layer(ls, n).__setattr__("name", n + "_x") for n in ("conv1_1", "score_fr")],
     r"stopped at layer 'conv1_1_x' .*no release FCN starts there"),
])
def test_a_net_the_reader_does_not_know_is_named_with_its_layer(fcn32s_layers, tmp_path, change, message):
    layers = [CaffeLayer(l.name, l.type, l.bottoms, l.tops, dict(l.params), l.blobs) for l in fcn32s_layers]
    change(layers)
    write_caffemodel(tmp_path / "changed.caffemodel", layers)
    with pytest.raises(CaffeModelError, match="changed.caffemodel: .*" + message):
        from_caffemodel(tmp_path / "changed.caffemodel")


class _Zeros:
    def conv(self, out, cin, k, bias=True):
        return [np.zeros((out, cin, k, k), np.float32)] + ([np.zeros(out, np.float32)] if bias else [])


def _layer(layers, name):
    return next(layer for layer in layers if layer.name == name)


def test_files_that_are_no_caffemodel_are_refused_with_where_reading_stopped(fcn32s_layers, tmp_path):
    torch.save({"conv1_1.weight": torch.zeros(1)}, tmp_path / "model.pth")
    with pytest.raises(CaffeModelError, match="model.pth is not a Caffe .caffemodel"):
        from_caffemodel(tmp_path / "model.pth")
    write_caffemodel(tmp_path / "whole.caffemodel", fcn32s_layers)
    data = (tmp_path / "whole.caffemodel").read_bytes()
    fc6 = [l.name for l in fcn32s_layers].index("fc6")
    start = sum(len(l.to_bytes()) for l in fcn32s_layers[:fc6])
    (tmp_path / "cut.caffemodel").write_bytes(data[: start + len(fcn32s_layers[fc6].to_bytes()) // 2])
    with pytest.raises(CaffeModelError, match=rf"cut.caffemodel is not a Caffe .caffemodel .*reading stopped "
                                              rf"in layer {fc6 + 1}, after layer 'pool5'; is it truncated"):
        from_caffemodel(tmp_path / "cut.caffemodel")
    (tmp_path / "empty.caffemodel").write_bytes(b"")
    with pytest.raises(CaffeModelError, match="empty.caffemodel holds no Caffe layers"):
        from_caffemodel(tmp_path / "empty.caffemodel")


def test_a_file_of_blobs_only_takes_its_definition_from_prototxt(tmp_path):
    before, kind, after = release_net("voc-fcn-alexnet")
    layers = before + list(trunk(kind)) + after
    blobs_only = [CaffeLayer(l.name, l.type, [], [], {}, l.blobs) for l in layers if l.blobs]
    write_caffemodel(tmp_path / "blobs.caffemodel", blobs_only)
    with pytest.raises(CaffeModelError, match=r"layer 'conv1' \(Convolution\) has no convolution_param: the file "
                                              r"holds blobs only; give the net's definition too: prototxt="):
        from_caffemodel(tmp_path / "blobs.caffemodel")
    write_prototxt(tmp_path / "val.prototxt", layers)
    net = from_caffemodel(tmp_path / "blobs.caffemodel", prototxt=tmp_path / "val.prototxt")
    with torch.no_grad():
        assert_logits_equal(net(torch.from_numpy(inputs(kind)["data"])), reference("voc-fcn-alexnet")["score"])


def imagenet_classifier(kind: str) -> list[CaffeLayer]:
    """VGG_ILSVRC_16_layers / bvlc_reference_caffenet: the trunk with fc6 and fc7 fully connected
    (InnerProduct, weights (out, in)), and fc8 and the softmax on top."""
    layers = []
    for layer in trunk(kind):
        if layer.name in ("fc6", "fc7"):
            weight, bias = layer.blobs
            layer = CaffeLayer(layer.name, "InnerProduct", layer.bottoms, layer.tops, dict(num_output=4096),
                               [weight.reshape(4096, -1), bias])
        layers.append(layer)
    fc8 = [np.zeros((1000, 4096), np.float32), np.zeros(1000, np.float32)]
    return layers + [CaffeLayer("fc8", "InnerProduct", ["fc7"], ["fc8"], dict(num_output=1000), fc8),
                     CaffeLayer("prob", "Softmax", ["fc8"], ["prob"])]


def fully_connected(pool5: np.ndarray, layers: list[CaffeLayer], kernel: int, i: int, j: int) -> np.ndarray:
    """InnerProductLayer fc6 on the kernel x kernel window of pool5 at (i, j), ReLU, fc7, ReLU."""
    by_name = {layer.name: layer for layer in layers}
    h = pool5[0, :, i:i + kernel, j:j + kernel].reshape(-1)
    for name in ("fc6", "fc7"):
        weight, bias = by_name[name].blobs
        h = np.maximum(weight.reshape(weight.shape[0], -1) @ h + bias, 0)
    return h


@pytest.mark.slow
@pytest.mark.parametrize("backbone, kind, kernel, v1", [("vgg16", "vgg16", 7, True), ("caffenet", "caffenet", 6, False)])
def test_imagenet_classifiers_initialise_the_trunk_convolutionalized(backbone, kind, kernel, v1, tmp_path):
    """VGG_ILSVRC_16_layers.caffemodel (V1 layers, 4-d legacy blobs) and CaffeNet as
    model.backbone.weights_path: fc7 at every position is the classifier on that window of pool5."""
    layers = imagenet_classifier(kind)
    path = tmp_path / f"{backbone}.caffemodel"
    write_caffemodel(path, layers, v1=v1)
    try:
        net = build_fcn(backbone, 32, 21, pretrained=True, weights="caffe", weights_path=str(path))
    finally:
        path.unlink()
    x = inputs(kind)["data"]
    up_to_pool5 = layers[:[l.name for l in layers].index("pool5") + 1]
    blobs = forward(up_to_pool5, {"data": x})
    with torch.no_grad():
        fc7 = net.eval().trunk(torch.from_numpy(x))[32].numpy()
    assert fc7.shape[-2:] == tuple(s - kernel + 1 for s in blobs["pool5"].shape[-2:]) != (0, 0)
    for i in range(fc7.shape[2]):
        for j in range(fc7.shape[3]):
            want = fully_connected(blobs["pool5"], layers, kernel, i, j)
            np.testing.assert_allclose(fc7[0, :, i, j], want, rtol=0, atol=1e-4 * np.abs(want).max())


def test_an_imagenet_file_of_another_trunk_is_refused(fcn32s_layers, tmp_path):
    write_caffemodel(tmp_path / "fcn.caffemodel", fcn32s_layers)
    with pytest.raises(CaffeModelError, match=r"fcn.caffemodel: .*'score_fr'.*not a layer of the vgg16 ImageNet classifier"):
        build_fcn("vgg16", 32, 21, pretrained=True, weights="caffe", weights_path=str(tmp_path / "fcn.caffemodel"))
