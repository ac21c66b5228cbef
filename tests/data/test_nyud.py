import numpy as np
import pytest
import scipy.io
import torch
from ondisk import write_mat, write_nyud
from PIL import Image

from fcn_lit.data import NYUDv2, SegmentationDataModule


def test_nyud_stacks_color_hha_and_log_depth_and_shifts_labels(tmp_path):
    written = write_nyud(tmp_path, {"train": ["0001", "0002"], "val": ["0003"], "test": ["0004"]})
    ds = NYUDv2(tmp_path, "trainval", modalities=["color", "hha", "depth"])
    assert ds.ids == ["0001", "0002", "0003"] and ds.num_classes == 40
    for i, sample_id in enumerate(ds.ids):
        image, target = ds[i]
        files = written[sample_id]
        assert image.dtype == np.float32 and image.shape == (12, 16, 7)
        np.testing.assert_array_equal(image[..., :3], files["color"])
        np.testing.assert_array_equal(image[..., 3:6], files["hha"])
        np.testing.assert_allclose(image[..., 6], np.log(files["depth"].astype(np.float64)) - 7.844, atol=1e-5)
        np.testing.assert_array_equal(target, files["labels"] - np.uint8(1))  # uint8 wrap: void 0 -> 255
    image, _ = NYUDv2(tmp_path, "test", modalities=["color"])[0]
    assert image.dtype == np.uint8 and image.shape == (12, 16, 3)


def test_nyud_datamodule_rgbd_has_four_channels(tmp_path):
    write_nyud(tmp_path, {"train": ["1"], "val": ["2"], "test": ["3"]})
    dm = SegmentationDataModule(NYUDv2, tmp_path, train_split="trainval", val_split="test",
                                modalities=["color", "depth"], normalization="caffe", num_workers=0)
    assert dm.in_channels == 4 and dm.num_classes == 40
    dm.setup("fit")
    images, targets = next(iter(dm.val_dataloader()))
    assert images.shape == (1, 4, 12, 16) and targets.shape == (1, 12, 16)
    assert dm.denormalize(images[0]).shape == (12, 16, 3)


def test_nyud_modern_augmentation_crops_all_seven_channels(tmp_path):
    write_nyud(tmp_path, {"train": ["1", "2"], "val": ["3"]}, size=(20, 24))
    dm = SegmentationDataModule(NYUDv2, tmp_path, train_split="train", val_split="val", num_workers=0,
                                modalities=["color", "hha", "depth"], augmentation="modern", batching="crop",
                                crop_size=16, batch_size=2)
    images, targets = next(iter(dm.train_dataloader()))
    assert images.shape == (2, 7, 16, 16) and targets.shape == (2, 16, 16)
    assert torch.isfinite(images).all()


def test_nyud_unknown_modality_names_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"data.modalities=\['rgb'\]"):
        NYUDv2(tmp_path, "train", modalities=["rgb"])


@pytest.mark.realdata
def test_nyud_reads_the_real_color_and_depth(realdata, tmp_path):
    real = realdata / "nyud" / "data"
    for folder in ("images", "depth"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        (tmp_path / "data" / folder / "img_5001.png").symlink_to(real / folder / "rcnn_depth_demo.png")
    labels = np.random.default_rng(0).integers(0, 41, size=(425, 560)).astype(np.uint8)
    write_mat(tmp_path / "segmentation" / "img_5001.mat", segmentation=labels)  # labels are not obtainable here
    (tmp_path / "test.txt").write_text("5001\n")
    image, target = NYUDv2(tmp_path, "test", modalities=["color", "depth"])[0]
    color = np.asarray(Image.open(real / "images" / "rcnn_depth_demo.png"))
    depth = np.asarray(Image.open(real / "depth" / "rcnn_depth_demo.png"), dtype=np.float32)
    assert image.shape == (425, 560, 4)
    np.testing.assert_array_equal(image[..., :3], color)
    valid = depth > 0
    np.testing.assert_allclose(image[..., 3][valid], np.log(depth[valid]) - 7.844, atol=1e-5)
    reference = scipy.io.loadmat(tmp_path / "segmentation" / "img_5001.mat")["segmentation"].astype(np.uint8) - 1
    np.testing.assert_array_equal(target, reference)


@pytest.mark.realdata
def test_nyud_reads_a_real_hha_image(realdata, tmp_path):
    (tmp_path / "data" / "hha").mkdir(parents=True)
    hha_png = realdata / "nyud" / "hha_demo_640x480" / "matlab_hha.png"
    (tmp_path / "data" / "hha" / "img_0001.png").symlink_to(hha_png)
    write_mat(tmp_path / "segmentation" / "img_0001.mat", segmentation=np.ones((480, 640), np.uint8))
    (tmp_path / "train.txt").write_text("0001\n")
    image, target = NYUDv2(tmp_path, "train", modalities=["hha"])[0]
    np.testing.assert_array_equal(image, np.asarray(Image.open(hha_png).convert("RGB")))
    assert (target == 0).all()
