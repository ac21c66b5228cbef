"""Whole nets: paper Table 1 parameter counts, fusion and multi-head nets, pretrained weights."""

from urllib.error import URLError

import pytest
import torch
import torchvision

from fcn_lit.models import build_fcn, preprocessing
from fcn_lit.models.pretrained import load_imagenet


def count(net, trainable_only=False):
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


@pytest.mark.parametrize("backbone,paper_millions", [("vgg16", 134), ("alexnet", 57), ("googlenet", 6)])
def test_parameter_counts_match_table_1(backbone, paper_millions):
    with torch.device("meta"):
        fcn = build_fcn(backbone, 32, 21)
        classifier = getattr(torchvision.models, backbone)(weights=None, **({"aux_logits": False, "init_weights": False} if backbone == "googlenet" else {}))
    # The classifier without its last (1000-way) layer, plus a 21-way 1x1 score layer.
    last = classifier.fc if backbone == "googlenet" else classifier.classifier[6]
    expected = count(classifier) - count(last) + last.in_features * 21 + 21
    # Table 1 counts the learned layers; the frozen bilinear upsampling is fixed interpolation.
    assert count(fcn, trainable_only=True) == expected
    assert round(expected / 1e6) == paper_millions


def test_early_fusion_rgbd_depth_filter_is_the_mean_of_rgb():
    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()
    net = build_fcn("alexnet", 32, 5, in_channels=4)
    load_imagenet(net.trunk, "alexnet", state)
    conv1 = net.trunk.stride8.conv1.weight
    torch.testing.assert_close(conv1[:, :3], state["features.0.weight"])
    torch.testing.assert_close(conv1[:, 3], state["features.0.weight"].mean(dim=1))
    # fc6 is the first fully connected layer, reshaped: torchvision flattens (C, 6, 6) row-major.
    torch.testing.assert_close(net.trunk.stride32.fc6.weight.flatten(1), state["classifier.1.weight"])
    assert net(torch.randn(1, 4, 20, 30)).shape == (1, 5, 20, 30)


def test_late_fusion_averages_the_streams_scores():
    torch.manual_seed(0)
    net = build_fcn("vgg16", 16, 4, width=0.0625, alignment="aligned", fusion="late", streams={"color": 3, "hha": 3}).eval()
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.normal_(0, 0.2)
    color, hha = torch.randn(1, 3, 40, 48), torch.randn(1, 3, 40, 48)
    with torch.no_grad():
        fused = net(torch.cat([color, hha], dim=1))
        # Linear upsampling: averaging the streams' full outputs equals upsampling the average.
        alone = [net.streams[name](x) for name, x in (("color", color), ("hha", hha))]
    torch.testing.assert_close(fused, (alone[0] + alone[1]) / 2, rtol=1e-5, atol=1e-5)
    assert fused.shape == (1, 4, 40, 48)
    with pytest.raises(ValueError, match="channels"):
        net(color)


def test_sift_flow_two_headed_net():
    net = build_fcn("vgg16", 16, 0, width=0.0625, alignment="aligned", heads={"semantic": 33, "geometric": 3})
    out = net(torch.randn(2, 3, 33, 41))
    assert {k: v.shape for k, v in out.items()} == {"semantic": (2, 33, 33, 41), "geometric": (2, 3, 33, 41)}
    assert net.heads["semantic"].score_fr.in_channels == net.heads["geometric"].score_fr.in_channels


@pytest.mark.parametrize(
    "options,match",
    [
        (dict(backbone="vgg13"), "backbone='vgg13'"),
        (dict(stride=4), "stride=4"),
        (dict(width=0.5, pretrained=True), "width=0.5"),
        (dict(norm="group"), "norm='group'"),
        (dict(alignment="none"), "alignment='none'"),
        (dict(weights="imagenet21k"), "weights='imagenet21k'"),
        (dict(fusion="late"), "streams"),
        (dict(pretrained=True, norm="batch"), "norm='batch'"),
    ],
)
def test_bad_options_are_named(options, match):
    with pytest.raises(ValueError, match=match):
        build_fcn(**{"backbone": "vgg16", **options})


def test_offline_pretrained_error_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(FileNotFoundError) as error:
        build_fcn("alexnet", 32, 21, pretrained=True)
    assert str(tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth") in str(error.value)


def test_pretrained_weights_load_from_torchvisions_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    state = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True).state_dict()
    url = torchvision.models.GoogLeNet_Weights.DEFAULT.url
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[-1])
    net = build_fcn("googlenet", 32, 21, pretrained=True, alignment="aligned")
    torch.testing.assert_close(net.trunk.stride8.conv1.conv.weight, state["conv1.conv.weight"])
    torch.testing.assert_close(net.trunk.stride32.inception5b.branch4[1].bn.running_var,
                               state["inception5b.branch4.1.bn.running_var"])


def test_caffe_weights_error_names_the_file(tmp_path):
    missing = tmp_path / "vgg16_from_caffe.pth"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        build_fcn("vgg16", 32, 21, pretrained=True, weights="caffe", weights_path=str(missing))


def test_preprocessing_follows_the_weights():
    caffe = preprocessing("vgg16", "caffe")
    assert caffe.bgr and caffe.divisor == 1.0 and caffe.mean[0] == pytest.approx(104.00699)
    tv = preprocessing("vgg16", "torchvision")
    assert not tv.bgr and tv.mean == (0.485, 0.456, 0.406)
    # GoogLeNet's transform_input makes its effective std 0.5 (checked against torchvision in test_preprocessing)
    assert preprocessing("googlenet", "torchvision").input_transform == "googlenet"
    with pytest.raises(ValueError, match="weights='caffe' is not one of backbone='alexnet'"):
        preprocessing("alexnet", "caffe")
