import logging

import numpy as np
import pytest
from ondisk import write_palette_png
from PIL import Image

from fcn_lit.data import VOC, BadSampleError, DataNotFoundError, SegmentationDataModule, SplitFileError
from fcn_lit.data.base import read_image


def test_truncated_image_names_the_file(make_voc):
    root, _ = make_voc({"train": 2})
    jpg = root / "JPEGImages" / "2011_000001.jpg"
    jpg.write_bytes(jpg.read_bytes()[:300])
    ds = VOC(root, "train")
    with pytest.raises(BadSampleError, match="2011_000001.jpg: cannot read the image") as err:
        ds[1]
    assert "skip_bad_samples" in str(err.value)


def test_unreadable_image_names_the_file(make_voc):
    root, _ = make_voc({"train": 1})
    (root / "JPEGImages" / "2011_000000.jpg").write_text("not a jpeg")
    with pytest.raises(BadSampleError, match="2011_000000.jpg"):
        VOC(root, "train")[0]


def test_missing_mask_is_reported_before_training(make_voc):
    root, _ = make_voc({"train": 3, "val": 1})
    (root / "SegmentationClass" / "2011_000002.png").unlink()
    dm = SegmentationDataModule(VOC, root, num_workers=0)
    with pytest.raises(DataNotFoundError, match=r"SegmentationClass/2011_000002.png missing") as err:
        dm.setup("fit")
    assert "1 of 3 samples" in str(err.value) and "skip_bad_samples=true" in str(err.value)
    with pytest.raises(DataNotFoundError, match=r"mask .*2011_000002.png does not exist"):
        VOC(root, "train")[2]


def test_size_mismatch_names_mask_image_and_both_sizes(make_voc):
    root, _ = make_voc({"train": 1}, sizes=[(20, 28)])
    mask = np.zeros((20, 27), np.uint8)
    write_palette_png(root / "SegmentationClass" / "2011_000000.png", mask)
    with pytest.raises(BadSampleError) as err:
        VOC(root, "train")[0]
    message = str(err.value)
    assert "2011_000000.png" in message and "2011_000000.jpg" in message
    assert "27x20" in message and "28x20" in message


def test_label_values_outside_the_classes_name_file_and_values(make_voc):
    root, _ = make_voc({"train": 1}, sizes=[(8, 8)])
    mask = np.zeros((8, 8), np.uint8)
    mask[0, 0], mask[1, 1], mask[2, 2] = 21, 40, 255
    write_palette_png(root / "SegmentationClass" / "2011_000000.png", mask)
    with pytest.raises(BadSampleError, match=r"2011_000000.png: label values \[21, 40\] are outside the 21"):
        VOC(root, "train")[0]


def test_rgb_mask_names_the_file_and_the_fix(make_voc):
    root, _ = make_voc({"train": 1}, sizes=[(8, 8)])
    Image.new("RGB", (8, 8)).save(root / "SegmentationClass" / "2011_000000.png")
    with pytest.raises(BadSampleError, match=r"2011_000000.png: mask mode is 'RGB'.*mask_format='color'"):
        VOC(root, "train")[0]


def test_empty_and_missing_split_files_name_the_file(make_voc):
    root, _ = make_voc({"train": 1})
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n\n")
    with pytest.raises(SplitFileError, match=r"Segmentation/val.txt is empty"):
        VOC(root, "val")
    with pytest.raises(DataNotFoundError, match=r"Segmentation/test.txt does not exist"):
        VOC(root, "test")


def test_wrong_root_names_the_expected_folders_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        VOC(tmp_path / "VOC2012", "train")
    message = str(err.value)
    assert str(tmp_path / "VOC2012" / "JPEGImages") in message
    assert "ImageSets/Segmentation" in message and "data.download=true" in message


def test_skip_bad_samples_reports_how_many_and_which(make_voc, caplog):
    root, masks = make_voc({"train": 4})
    (root / "SegmentationClass" / "2011_000001.png").unlink()
    jpg = root / "JPEGImages" / "2011_000002.jpg"
    jpg.write_bytes(jpg.read_bytes()[:200])
    dm = SegmentationDataModule(VOC, root, val_split=None, skip_bad_samples=True, num_workers=0)
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
        ds = dm.train_dataset
        assert ds.ids == ["2011_000000", "2011_000002", "2011_000003"]
        _, target = ds[1]  # the truncated image: skipped, the next sample comes instead
    np.testing.assert_array_equal(target, masks["2011_000003"])
    assert [sample_id for sample_id, _ in ds.skipped] == ["2011_000001", "2011_000002"]
    assert "skipped 1 samples: ['2011_000001']" in caplog.text
    assert "skipping sample 2011_000002 (2 skipped so far)" in caplog.text and "2011_000002.jpg" in caplog.text


def test_greyscale_and_cmyk_jpegs_load_as_rgb(tmp_path):
    grey = np.tile(np.arange(0, 240, 10, dtype=np.uint8), (6, 1))
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.jpg", quality=100)
    image = read_image(tmp_path / "grey.jpg")
    assert image.shape == (6, 24, 3)
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
    assert np.abs(image[..., 0].astype(int) - grey).max() <= 3
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    red = read_image(tmp_path / "cmyk.jpg")
    assert red.shape == (8, 8, 3)
    assert (red[..., 0] > 240).all() and (red[..., 1:] < 15).all()
