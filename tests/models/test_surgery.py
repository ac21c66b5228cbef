"""Weight surgery: convolutionalization, staged transplant, growing classes, pytorch-fcn import."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from fcn_lit.models import build_fcn, convolutionalize, grow_classes, import_torchfcn, transplant


@pytest.mark.parametrize("arch", ["alexnet", "vgg16"])
def test_convolutionalized_classifier_equals_the_classifier(arch):
    torch.manual_seed(0)
    classifier = getattr(torchvision.models, arch)(weights=None).eval()
    fcn = convolutionalize(classifier).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        heat = fcn(x)
        assert heat.shape == (2, 1000, 1, 1)
        torch.testing.assert_close(heat[:, :, 0, 0], classifier(x), rtol=1e-4, atol=1e-5)
        # Larger input: each heatmap cell is the fully connected classifier on one 7x7 (6x6)
        # window of the feature map, i.e. the classifier slid over the image.
        big = torch.randn(1, 3, 256, 224)
        heat = fcn(big)
        features = classifier.features(big)
        k = classifier.avgpool.output_size[0]
        assert heat.shape[-2:] == (features.shape[-2] - k + 1, features.shape[-1] - k + 1)
        window = features[:, :, 1 : 1 + k, 0:k].flatten(1)
        torch.testing.assert_close(heat[:, :, 1, 0], classifier.classifier(window), rtol=1e-4, atol=1e-5)


def _randomised(net):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
    return net


def test_staged_transplant_keeps_every_shared_weight():
    fcn32 = _randomised(build_fcn("vgg16", 32, 5, width=0.0625))
    fcn16 = transplant(fcn32, build_fcn("vgg16", 16, 5, width=0.0625))
    fcn8 = transplant(fcn16, build_fcn("vgg16", 8, 5, width=0.0625))
    s32, s16, s8 = (n.state_dict() for n in (fcn32, fcn16, fcn8))
    for key, value in s32.items():
        if key != "head.upscore.weight":  # FCN-32s's own final upsampling has no counterpart
            torch.testing.assert_close(s16[key], value, rtol=0, atol=0)
            torch.testing.assert_close(s8[key], value, rtol=0, atol=0)
    for key in ("head.score_pool4.weight", "head.score_pool4.bias"):
        torch.testing.assert_close(s8[key], s16[key], rtol=0, atol=0)
        assert not s16[key].any()
    assert not s8["head.score_pool3.weight"].any()


def test_transplant_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="score_fr"):
        transplant(build_fcn("vgg16", 32, 5, width=0.0625), build_fcn("vgg16", 16, 7, width=0.0625))


def release_transplant(new_params, params, suffix=""):
    """The release's surgery.transplant on {layer: [blobs]} numpy dicts: each layer of ``params``
    is copied flat into ``new_params[layer + suffix]`` when that exists, else dropped."""
    for p, blobs in params.items():
        p_new = p + suffix
        if p_new not in new_params:
            continue
        for i, blob in enumerate(blobs):
            if i > len(new_params[p_new]) - 1:
                break
            new_params[p_new][i].flat[:] = blob.ravel()
    return new_params


def release_params(net):
    """{Caffe layer name: [weight, bias]} as numpy copies; a late-fusion stream's layers carry the
    stream name as suffix (conv1_1color), as in the release's nyud-fcn32s-color-hha net."""
    params = {}
    for name, module in net.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            parts = name.split(".")
            layer = parts[-1] + (parts[1] if parts[0] == "streams" else "")
            params[layer] = [t.detach().numpy().copy() for t in (module.weight, module.bias) if t is not None]
    return params


def _randomised_but_upsampling(net, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "upscore" not in name:  # frozen bilinear in the release and here
                p.normal_(0, 0.1)
    return net


def test_single_streams_transplant_into_the_late_fusion_streams_as_the_release_does():
    options = dict(width=0.0625, alignment="aligned")
    rgb = _randomised_but_upsampling(build_fcn("vgg16", 32, 5, **options), 1).eval()
    hha = _randomised_but_upsampling(build_fcn("vgg16", 32, 5, **options), 2).eval()
    fusion = build_fcn("vgg16", 32, 5, fusion="late", streams={"color": 3, "hha": 3}, **options).eval()
    expected = release_transplant(release_params(fusion), release_params(rgb), "color")
    expected = release_transplant(expected, release_params(hha), "hha")

    transplant(hha, transplant(rgb, fusion, stream="color"), stream="hha")
    got = release_params(fusion)
    assert got.keys() == expected.keys() and "conv1_1color" in got and "score_frhha" in got
    for layer, blobs in expected.items():
        for mine, theirs in zip(got[layer], blobs, strict=True):
            np.testing.assert_array_equal(mine, theirs, err_msg=layer)
    # Score maps averaged, then one linear upsampling: the fused logits are the streams' mean.
    x_rgb, x_hha = torch.randn(1, 3, 40, 36), torch.randn(1, 3, 40, 36)
    with torch.no_grad():
        torch.testing.assert_close(fusion(torch.cat([x_rgb, x_hha], 1)), (rgb(x_rgb) + hha(x_hha)) / 2,
                                   rtol=1e-5, atol=1e-5)


def test_transplant_refuses_to_copy_nothing():
    single = build_fcn("vgg16", 32, 5, width=0.0625)
    fusion = build_fcn("vgg16", 32, 5, width=0.0625, fusion="late", streams={"color": 3, "hha": 3})
    with pytest.raises(ValueError, match="copy nothing.*stream=<name>"):
        transplant(single, fusion)
    with pytest.raises(ValueError, match="copy nothing"):
        transplant(fusion, single)
    with pytest.raises(ValueError, match=r"stream='depth'.*\['color', 'hha'\]"):
        transplant(single, fusion, stream="depth")
    with pytest.raises(ValueError, match="not a late-fusion net"):
        transplant(single, build_fcn("vgg16", 32, 5, width=0.0625), stream="color")


def test_grow_classes_keeps_old_scores_and_adds_zero_ones():
    net = _randomised(build_fcn("vgg16", 8, 3, width=0.0625, alignment="aligned")).eval()
    x = torch.randn(1, 3, 40, 50)
    with torch.no_grad():
        before = net(x)
        grown = grow_classes(net, 5)
        after = grown(x)
    assert after.shape == (1, 5, 40, 50)
    torch.testing.assert_close(after[:, :3], before)
    assert not after[:, 3:].any()


# --- pytorch-fcn (wkentaro) checkpoints: its layout and forward pass, written out here ---------

VGG_LAYERS = [("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
              ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
              ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512),
              ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512)]


def torchfcn_state_dict(stride, n_class, width=0.125, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = lambda ch: int(ch * width)  # noqa: E731
    sd = {}
    for name, cin, cout in VGG_LAYERS:
        cin = 3 if name == "conv1_1" else c(cin)
        sd[f"{name}.weight"] = torch.randn(c(cout), cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
        sd[f"{name}.bias"] = torch.randn(c(cout), generator=g) * 0.1
    fc = c(4096)
    sd["fc6.weight"] = torch.randn(fc, c(512), 7, 7, generator=g) * (2 / (49 * c(512))) ** 0.5
    sd["fc6.bias"] = torch.randn(fc, generator=g) * 0.1
    sd["fc7.weight"] = torch.randn(fc, fc, 1, 1, generator=g) * (2 / fc) ** 0.5
    sd["fc7.bias"] = torch.randn(fc, generator=g) * 0.1
    scores = {"score_fr": fc, "score_pool4": c(512), "score_pool3": c(256)}
    ups = {32: {"upscore": 64}, 16: {"upscore2": 4, "upscore16": 32},
           8: {"upscore2": 4, "upscore_pool4": 4, "upscore8": 16}}[stride]
    for name in list(scores)[: {32: 1, 16: 2, 8: 3}[stride]]:
        sd[f"{name}.weight"] = torch.randn(n_class, scores[name], 1, 1, generator=g) * 0.1
        sd[f"{name}.bias"] = torch.randn(n_class, generator=g)
    for name, k in ups.items():  # trained, so no longer bilinear
        sd[f"{name}.weight"] = torch.randn(n_class, n_class, k, k, generator=g) * 0.1
    return sd


def torchfcn_forward(sd, x, stride, at_once=False):
    """pytorch-fcn's FCN32s/FCN16s/FCN8s(AtOnce).forward, layer by layer."""
    h = x
    taps = {}
    for i, convs in enumerate([2, 2, 3, 3, 3], start=1):
        for j in range(1, convs + 1):
            name = f"conv{i}_{j}"
            h = F.relu(F.conv2d(h, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=100 if name == "conv1_1" else 1))
        h = F.max_pool2d(h, 2, stride=2, ceil_mode=True)
        taps[i] = h
    h = F.relu(F.conv2d(h, sd["fc6.weight"], sd["fc6.bias"]))
    h = F.relu(F.conv2d(h, sd["fc7.weight"], sd["fc7.bias"]))
    h = F.conv2d(h, sd["score_fr.weight"], sd["score_fr.bias"])
    if stride == 32:
        h = F.conv_transpose2d(h, sd["upscore.weight"], stride=32)
        return h[:, :, 19 : 19 + x.size(2), 19 : 19 + x.size(3)]
    upscore2 = F.conv_transpose2d(h, sd["upscore2.weight"], stride=2)
    h = F.conv2d(taps[4] * (0.01 if at_once else 1), sd["score_pool4.weight"], sd["score_pool4.bias"])
    h = upscore2 + h[:, :, 5 : 5 + upscore2.size(2), 5 : 5 + upscore2.size(3)]
    if stride == 16:
        h = F.conv_transpose2d(h, sd["upscore16.weight"], stride=16)
        return h[:, :, 27 : 27 + x.size(2), 27 : 27 + x.size(3)]
    upscore_pool4 = F.conv_transpose2d(h, sd["upscore_pool4.weight"], stride=2)
    h = F.conv2d(taps[3] * (0.0001 if at_once else 1), sd["score_pool3.weight"], sd["score_pool3.bias"])
    h = upscore_pool4 + h[:, :, 9 : 9 + upscore_pool4.size(2), 9 : 9 + upscore_pool4.size(3)]
    h = F.conv_transpose2d(h, sd["upscore8.weight"], stride=8)
    return h[:, :, 31 : 31 + x.size(2), 31 : 31 + x.size(3)]


@pytest.mark.parametrize("stride,at_once", [(32, False), (16, False), (8, False), (8, True)])
def test_imported_torchfcn_checkpoint_gives_the_ports_logits(stride, at_once):
    sd = torchfcn_state_dict(stride, 4)
    net = import_torchfcn({"model_state_dict": sd} if stride == 16 else sd, at_once=at_once).eval()
    assert net.head.stride == stride
    x = torch.randn(2, 3, 45, 61)
    with torch.no_grad():
        torch.testing.assert_close(net(x), torchfcn_forward(sd, x, stride, at_once), rtol=1e-4, atol=1e-4)


def test_full_size_torchfcn_layout_imports():
    sd = torchfcn_state_dict(8, 21, width=1.0)
    net = import_torchfcn(sd)
    assert net.trunk.stride32.fc6.weight.shape == (4096, 512, 7, 7)
    torch.testing.assert_close(net.head.upscore8.weight, sd["upscore8.weight"], rtol=0, atol=0)


def test_import_rejects_other_layouts():
    sd = torchfcn_state_dict(32, 4)
    del sd["fc7.bias"]
    with pytest.raises(ValueError, match="fc7.bias"):
        import_torchfcn(sd)
    with pytest.raises(ValueError, match="not a pytorch-fcn"):
        import_torchfcn({"features.0.weight": torch.zeros(1)})


def trainer_checkpoint(sd, arch):
    """What pytorch-fcn's Trainer.validate saves (torchfcn/trainer.py)."""
    return {"epoch": 3, "iteration": 4000, "arch": arch, "optim_state_dict": {"state": {}, "param_groups": []},
            "model_state_dict": sd, "best_mean_iu": 0.5}


@pytest.mark.parametrize("arch,stride,at_once", [("FCN8s", 8, False), ("FCN8sAtOnce", 8, True)])
def test_trainer_checkpoint_arch_sets_the_at_once_scaling(arch, stride, at_once):
    sd = torchfcn_state_dict(stride, 3, seed=2)
    net = import_torchfcn(trainer_checkpoint(sd, arch)).eval()
    x = torch.randn(1, 3, 37, 29)
    with torch.no_grad():
        logits = net(x)
        torch.testing.assert_close(logits, torchfcn_forward(sd, x, stride, at_once), rtol=1e-4, atol=1e-4)
        if stride == 8:  # the other scaling gives other logits: the arch decides
            assert not torch.allclose(logits, torchfcn_forward(sd, x, stride, not at_once), rtol=1e-3, atol=1e-3)


def test_trainer_checkpoint_with_an_unknown_or_contradicted_arch_is_refused():
    sd = torchfcn_state_dict(8, 3)
    with pytest.raises(ValueError, match="arch='FCN8sAtOnceWithBN'"):
        import_torchfcn(trainer_checkpoint(sd, "FCN8sAtOnceWithBN"))
    with pytest.raises(ValueError, match="arch='FCN16s'.*FCN-8s"):
        import_torchfcn(trainer_checkpoint(sd, "FCN16s"))
    with pytest.raises(ValueError, match="at_once=False contradicts"):
        import_torchfcn(trainer_checkpoint(sd, "FCN8sAtOnce"), at_once=False)
    with pytest.raises(ValueError, match="FCN-32s"):
        import_torchfcn(torchfcn_state_dict(32, 3), at_once=True)
