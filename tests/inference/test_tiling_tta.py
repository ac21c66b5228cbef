"""Sliding-window inference and test-time augmentation (fcn_lit.inference.tiling), against computations
written here: whole-image logits, explicit window lists, torch's own resizing."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from random_weights import randomize
from runconfig import REPO, compose_config
from torch import nn

from fcn_lit.data.synthetic import generate_synthetic
from fcn_lit.data.transforms import build_normalization
from fcn_lit.inference.evaluate import evaluate
from fcn_lit.inference.tiling import TTA, Segmenter, Tiling, mean_pixel
from fcn_lit.models import build_fcn
from fcn_lit.training.module import FCNModule
from fcn_lit.inference.predict import predict

IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def tiny_fcn(seed=0):
    return randomize(build_fcn("vgg16", 8, 5, width=0.125, alignment="aligned"), seed).eval()


@torch.no_grad()
def test_a_window_covering_the_image_gives_exactly_the_whole_image_logits():
    net = tiny_fcn()
    x = torch.randn(2, 3, 45, 61)
    whole = net(x)
    for window in (61, 64, 500):
        assert torch.equal(Segmenter(net, Tiling(window=window, stride=7))(x), whole)
    # A window covering only one axis: windows along the other one, so no longer the same logits.
    assert not torch.allclose(Segmenter(net, Tiling(window=50, stride=20))(x), whole, atol=1e-3)


class WindowMean(nn.Module):
    """Each pixel's logit is the mean of its window's first channel: sees the window and its padding."""

    def forward(self, x):
        return x[:, :1].mean((-2, -1), keepdim=True).expand(-1, 1, *x.shape[-2:])


@torch.no_grad()
def test_overlapping_windows_are_averaged_and_the_overhang_padded_with_the_mean():
    h, w, window, stride, pad = 70, 50, 32, 20, 0.25
    x = torch.randn(1, 3, h, w, dtype=torch.float64)
    out = Segmenter(WindowMean(), Tiling(window, stride), pad_value=torch.full((3,), pad, dtype=torch.float64))(x)

    def starts(size):  # every stride until a window reaches the end
        s = [0]
        while s[-1] + window < size:
            s.append(s[-1] + stride)
        return s

    assert starts(h) == [0, 20, 40] and starts(w) == [0, 20]  # the last windows hang past the border
    image = x[0, 0].numpy()
    canvas = np.full((100, 100), pad)
    canvas[:h, :w] = image
    total, count = np.zeros((h, w)), np.zeros((h, w))
    for top in starts(h):
        for left in starts(w):
            total[top : top + window, left : left + window] += canvas[top : top + window, left : left + window].mean()
            count[top : top + window, left : left + window] += 1
    np.testing.assert_allclose(out[0, 0].numpy(), total / count, rtol=1e-6)  # float32 sums


def test_windows_pad_with_the_data_sets_mean_pixel():
    voc_bgr = (104.00699, 116.66877, 122.67892)
    # Caffe input is the data set's mean subtracted: its mean pixel is 0.
    assert torch.equal(mean_pixel(build_normalization("caffe", caffe_means={"color": voc_bgr})), torch.zeros(3))
    # ImageNet input is normalised by ImageNet's statistics: VOC's mean pixel lands near, not at, 0.
    imagenet = mean_pixel(build_normalization("imagenet", caffe_means={"color": voc_bgr})).numpy()
    np.testing.assert_allclose(imagenet, (np.array(voc_bgr[::-1]) / 255 - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-5)
    assert np.abs(imagenet).max() > 1e-3
    # A data set without a declared mean pads with the weights' own mean pixel.
    assert torch.equal(mean_pixel(build_normalization("imagenet")), torch.zeros(3))


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match=r"tiling.stride=600 must lie in 1..tiling.window \(512\)"):
        Tiling(window=512, stride=600)
    with pytest.raises(ValueError, match="tiling.window=0"):
        Tiling(window=0)
    with pytest.raises(ValueError, match=r"tta.scales=\[1.0, -0.5\]"):
        TTA(scales=[1.0, -0.5])
    assert Tiling(window=512).step == 341 and not TTA().enabled and TTA(flip=True).enabled


def symmetrize(net):
    """Mirror-symmetric filters: with aligned pools on even sizes the whole FCN commutes with flips."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_((m.weight + m.weight.flip(-1)) / 2)
    return net


@torch.no_grad()
def test_flip_tta_of_a_mirror_symmetric_net_equals_its_plain_output():
    x = torch.randn(1, 3, 32, 64)
    net = symmetrize(tiny_fcn())
    plain = net(x)
    np.testing.assert_allclose(net(x.flip(-1)).flip(-1), plain, atol=1e-5)  # the premise
    np.testing.assert_allclose(Segmenter(net, tta=TTA(flip=True))(x), plain, atol=1e-5)
    asymmetric = tiny_fcn(seed=1)  # the same test on an ordinary net fails
    assert not torch.allclose(Segmenter(asymmetric, tta=TTA(flip=True))(x), asymmetric(x), atol=1e-3)


class TwoHeads(nn.Module):
    """A small convolutional net with two heads, as SIFT Flow's."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.a, self.b = nn.Conv2d(8, 3, 3, padding=1), nn.Conv2d(8, 2, 1)

    def forward(self, x):
        features = self.body(x)
        return {"a": self.a(features), "b": self.b(features)}


@torch.no_grad()
def test_tta_averages_rescaled_and_mirrored_logits_resized_back():
    net, x = TwoHeads().eval(), torch.randn(1, 3, 40, 56)
    for head in ("a", "b"):
        views = []
        for scale in (0.5, 1.0, 1.5):
            size = (round(40 * scale), round(56 * scale))
            xs = F.interpolate(x, size=size, mode="bilinear") if scale != 1.0 else x
            for logits in (net(xs)[head], net(xs.flip(3))[head].flip(3)):
                views.append(F.interpolate(logits, size=(40, 56), mode="bilinear") if scale != 1.0 else logits)
        got = Segmenter(net, tta=TTA(scales=[0.5, 1.0, 1.5], flip=True))(x)[head]
        np.testing.assert_allclose(got, torch.stack(views).mean(0), atol=1e-6)
    tiled = Segmenter(net, Tiling(24, 16), TTA(scales=[0.5, 1.0], flip=True))(x)
    assert {k: tuple(v.shape) for k, v in tiled.items()} == {"a": (1, 3, 40, 56), "b": (1, 2, 40, 56)}


def test_predict_tiles_and_augments(tmp_path, run_checkpoint):
    from PIL import Image

    ckpt, _ = run_checkpoint
    (tmp_path / "photos").mkdir()
    rgb = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photos" / "a.png")
    probs = {}
    for name, options in {"plain": {}, "one_window": {"tiling": {"window": 50}},
                          "tiled_tta": {"tiling": {"window": 32, "stride": 24}, "tta": {"flip": True}}}.items():
        predict(ckpt, tmp_path / "photos", tmp_path / name, progress=False, speed_options={"runtime": "torch", "precision": "fp32"},
                probabilities=True, **options)
        probs[name] = np.load(tmp_path / name / "a_probs.npy")
    assert np.array_equal(probs["one_window"], probs["plain"])
    assert probs["tiled_tta"].shape == probs["plain"].shape
    assert not np.allclose(probs["tiled_tta"], probs["plain"], atol=1e-2)


@pytest.mark.slow
def test_eval_reports_tta_beside_single_scale(tmp_path, capsys):
    data = generate_synthetic(tmp_path / "synthetic", num_train=2, num_val=3, size=40)
    module = FCNModule(net={"stride": 8, "alignment": "aligned"},
                       backbone={"name": "vgg16", "pretrained": False, "width": 0.125, "norm": None},
                       loss={}, optimizer={"lr": 0.0}, scheduler={}, num_classes=6,
                       class_names=(data / "class_names.txt").read_text().split())
    randomize(module.net)
    ckpt = tmp_path / "model.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, ckpt)
    tiling, tta = Tiling(window=32, stride=24), TTA(scales=[0.75, 1.0], flip=True)
    overrides = [f"ckpt_path={ckpt}", f"data.root={data}", "data.generator.num_train=2", "data.generator.num_val=3",
                 "data.generator.size=40", "data.batch_size=3", "tta.scales=[0.75,1.0]", "tta.flip=true",
                 "tiling.window=32", "tiling.stride=24", "speed.runtime=torch", "speed.precision=fp32"]
    cfg = compose_config(tmp_path / "eval", overrides, config_name="eval")
    results = evaluate(cfg)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert "single-scale vs test-time augmentation" in capsys.readouterr().out

    datamodule = instantiate(cfg.data)  # independent scoring of the same views, score.py's formulas
    pad = mean_pixel(datamodule.normalization)
    for split, views in (("test", TTA()), ("test_tta", tta)):
        hist = np.zeros((6, 6), np.int64)
        with torch.no_grad():
            dataset = datamodule.test_dataloader().dataset
            for image, target in (dataset[i] for i in range(len(dataset))):
                pred = Segmenter(module.net.eval(), tiling, views, pad)(image[None]).argmax(1)[0].numpy().ravel()
                keep = target.numpy().ravel() < 6
                hist += np.bincount(6 * target.numpy().ravel()[keep] + pred[keep], minlength=36).reshape(6, 6)
        assert saved[split]["pixel_acc"] == pytest.approx(np.diag(hist).sum() / hist.sum(), abs=1e-12)
    assert saved["test"]["pixel_acc"] != saved["test_tta"]["pixel_acc"]


# Peak memory of segmenting a 4000x3000 image window by window, in a fresh process (ru_maxrss is
# a process's lifetime peak). The net's hidden layer alone, over the whole image, takes
# 16 x 4000 x 3000 float32 = 768 MB; tiled, the process must grow by less than that.
MEMORY_SCRIPT = textwrap.dedent("""
    import ctypes, re, torch
    from pathlib import Path
    from torch import nn
    from fcn_lit.inference.tiling import Segmenter, Tiling
    def status_kib(field):
        return int(re.search(field + r":\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1))
    torch.set_num_threads(1)
    net = nn.Sequential(nn.Conv2d(3, 16, 1), nn.ReLU(), nn.Conv2d(16, 2, 1)).eval()
    x = torch.rand(1, 3, 3000, 4000)
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # the high-water mark starts from the live set:
    Path("/proc/self/clear_refs").write_text("5")  # Linux resets VmHWM to the current RSS
    before = status_kib("VmRSS")
    with torch.inference_mode():
        out = Segmenter(net, Tiling(window=512, stride=512))(x)
    print(tuple(out.shape), (status_kib("VmHWM") - before) * 1024)
""")


@pytest.mark.slow
def test_a_4000x3000_image_is_segmented_tiled_in_less_memory_than_the_whole_image_needs():
    env = {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, env=env,
                         check=True, timeout=300).stdout.split(maxsplit=4)
    assert out[:4] == ["(1,", "2,", "3000,", "4000)"]
    whole_hidden_layer = 16 * 3000 * 4000 * 4
    logits = 2 * 3000 * 4000 * 4  # the tiled path's one image-sized buffer
    grown = int(out[4])
    assert logits <= grown < whole_hidden_layer, f"grew by {grown / 2**20:.0f} MiB"
