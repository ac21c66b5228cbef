"""Caffe input, bit for bit: every data set's loader gives exactly what the release's data layer
(voc_layers.py, siftflow_layers.py, nyud_layers.py, pascalcontext_layers.py) computes with numpy:
``in_ = np.array(im, dtype=np.float32)[:, :, ::-1]; in_ -= self.mean``, where voc_layers.py's mean
is ``np.array(params['mean'])`` of a tuple (float64) and the other three layers build theirs as
``np.array(..., dtype=np.float32)``: each layer's own arithmetic, rewritten here."""

import numpy as np
from ondisk import SCENES, write_context, write_nyud, write_sbd, write_siftflow
from PIL import Image

from fcn_lit.data import SBD, VOC, NYUDv2, PASCALContext, SegmentationDataModule, SIFTFlow

# The means as the release's layers build them (BGR for colour): voc_layers.py's self.mean is
# np.array(params['mean']) of net.py's tuple; the others are float32 arrays in the layer's setup().
VOC_MEAN = np.array((104.00699, 116.66877, 122.67892))
SIFTFLOW = (114.578, 115.294, 108.353)
CONTEXT = (104.007, 116.669, 122.679)
NYUD_BGR = (116.190, 97.203, 92.318)
SIFTFLOW_MEAN = np.array(SIFTFLOW, dtype=np.float32)
CONTEXT_MEAN = np.array(CONTEXT, dtype=np.float32)
NYUD_MEAN_BGR = np.array(NYUD_BGR, dtype=np.float32)
NYUD_MEAN_HHA = np.array((132.431, 94.076, 118.477), dtype=np.float32)
NYUD_MEAN_LOGD = np.array((7.844,), dtype=np.float32)


def release_image(path, mean):
    """voc_layers.py load_image (siftflow, pascalcontext and nyud's load_image are the same)."""
    in_ = np.array(Image.open(path), dtype=np.float32)
    in_ = in_[:, :, ::-1]
    in_ -= mean
    return in_.transpose((2, 0, 1))


def release_hha(path):
    in_ = np.array(Image.open(path), dtype=np.float32)
    in_ -= NYUD_MEAN_HHA
    return in_.transpose((2, 0, 1))


def release_depth(path):
    d = np.array(Image.open(path), dtype=np.float32)
    d = np.log(d)
    d -= NYUD_MEAN_LOGD
    return d[np.newaxis, ...]


def assert_float64_rule_differs(path, mean):
    """The mean's dtype shows: VOC's float64 rule on these values misses the layer by an ulp somewhere."""
    assert not np.array_equal(release_image(path, np.array(mean, dtype=np.float32)), release_image(path, np.array(mean)))


def first_val_image(dm):
    dm.prepare_data()
    dm.setup("validate")
    images, _ = next(iter(dm.val_dataloader()))
    return images[0].numpy()


def assert_bit_exact(ours, release):
    assert ours.dtype == release.dtype == np.float32
    assert np.array_equal(ours, release), f"max difference {np.abs(ours - release).max()}"


def test_voc_sbd_input_is_the_release_layer_bit_for_bit(make_voc, tmp_path):
    root, masks = make_voc({"train": 1, "val": 1})
    dm = SegmentationDataModule(VOC, root, normalization="caffe")
    val_id = list(masks)[1]  # make_voc writes the train ids first
    assert_bit_exact(first_val_image(dm), release_image(root / "JPEGImages" / f"{val_id}.jpg", VOC_MEAN))
    val_id = list(write_sbd(tmp_path / "sbd", {"train": 1, "val": 1}))[1]
    dm = SegmentationDataModule(SBD, tmp_path / "sbd", normalization="caffe")
    assert_bit_exact(first_val_image(dm), release_image(tmp_path / "sbd" / "img" / f"{val_id}.jpg", VOC_MEAN))


def test_siftflow_input_is_the_release_layer_bit_for_bit(tmp_path):
    write_siftflow(tmp_path, {"trainval": ["coast_a"], "test": ["forest_c"]})
    dm = SegmentationDataModule(SIFTFlow, tmp_path, train_split="trainval", val_split="test", normalization="caffe")
    expected = release_image(tmp_path / "Images" / SCENES / "forest_c.jpg", SIFTFLOW_MEAN)
    assert_bit_exact(first_val_image(dm), expected)
    assert_float64_rule_differs(tmp_path / "Images" / SCENES / "forest_c.jpg", SIFTFLOW)


def test_context_input_uses_its_own_mean_bit_for_bit(tmp_path):
    write_context(tmp_path, np.zeros((6, 8), np.uint16), split="val")
    dm = SegmentationDataModule(PASCALContext, tmp_path, train_split=None, val_split="val", normalization="caffe")
    expected = release_image(tmp_path / "VOC2010" / "JPEGImages" / "2008_000002.jpg", CONTEXT_MEAN)
    assert_bit_exact(first_val_image(dm), expected)
    assert_float64_rule_differs(tmp_path / "VOC2010" / "JPEGImages" / "2008_000002.jpg", CONTEXT)


def test_nyud_color_hha_and_depth_are_the_release_layer_bit_for_bit(tmp_path):
    write_nyud(tmp_path, {"train": ["1"], "val": ["2"]})
    dm = SegmentationDataModule(NYUDv2, tmp_path, train_split="train", val_split="val",
                                modalities=["color", "hha", "depth"], normalization="caffe")
    data = tmp_path / "data"
    expected = np.concatenate([release_image(data / "images" / "img_2.png", NYUD_MEAN_BGR),
                               release_hha(data / "hha" / "img_2.png"), release_depth(data / "depth" / "img_2.png")])
    assert_bit_exact(first_val_image(dm), expected)
    assert_float64_rule_differs(data / "images" / "img_2.png", NYUD_BGR)
