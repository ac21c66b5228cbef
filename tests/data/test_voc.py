import numpy as np
import pytest
from PIL import Image

from fcn_lit.data import VOC, colorize, voc_palette


def test_voc_returns_the_files_pixel_for_pixel(make_voc):
    root, masks = make_voc({"train": 3, "val": 2})
    ds = VOC(root, "train")
    assert ds.ids == (root / "ImageSets/Segmentation/train.txt").read_text().split()
    assert len(ds) == 3 and ds.num_classes == 21 and ds.class_names[15] == "person"
    for i, sample_id in enumerate(ds.ids):
        image, target = ds[i]
        expected = np.asarray(Image.open(root / "JPEGImages" / f"{sample_id}.jpg").convert("RGB"))
        assert image.dtype == np.uint8 and image.shape == expected.shape
        np.testing.assert_array_equal(image, expected)
        assert target.dtype == np.int64
        np.testing.assert_array_equal(target, masks[sample_id])
        assert (target == 255).any()


@pytest.mark.realdata
def test_seg11valid_ships_736_ids_when_the_root_has_none(make_voc, realdata):
    root, _ = make_voc()
    with pytest.raises(FileNotFoundError, match="seg11valid"):
        # the images of the 736 ids are absent from the tiny root: the missing-file check names them
        VOC(root, "seg11valid").drop_missing()
    ids = VOC(root, "seg11valid").ids
    official = (realdata / "voc/VOCdevkit/VOC2012/ImageSets/Segmentation/seg11valid_FCN_official.txt").read_text()
    assert ids == official.split() and len(ids) == 736


@pytest.mark.realdata
def test_voc_palette_matches_the_palette_in_real_voc_pngs(realdata):
    png = Image.open(realdata / "voc/VOCdevkit/VOC2012/SegmentationClass/fcn_demo.png")
    stored = np.asarray(png.getpalette(), dtype=np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(voc_palette(len(stored)), stored)
    mask = np.asarray(png)
    painted = colorize(mask, voc_palette(21))
    np.testing.assert_array_equal(painted, np.asarray(png.convert("RGB")))


@pytest.mark.realdata
def test_voc_reads_the_real_samples(realdata):
    root = realdata / "voc/VOCdevkit/VOC2012"
    ds = VOC(root, "trainval")
    assert len(ds) == 4
    for i, sample_id in enumerate(ds.ids):
        image, target = ds[i]
        png = Image.open(root / "SegmentationClass" / f"{sample_id}.png")
        np.testing.assert_array_equal(target, np.asarray(png))
        assert image.shape == (*target.shape, 3)
        assert set(np.unique(target)) <= set(range(21)) | {255}
