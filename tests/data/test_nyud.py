import numpy as np
import pytest
import scipy.io
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
    dm = SegmentationDataModule("nyud", tmp_path, train_split="trainval", val_split="test",
                                modalities=["color", "depth"], normalization="caffe", num_workers=0)
    assert dm.in_channels == 4 and dm.num_classes == 40
    dm.setup("fit")
    images, targets = next(iter(dm.val_dataloader()))
    assert images.shape == (1, 4, 12, 16) and targets.shape == (1, 12, 16)
    assert dm.denormalize(images[0]).shape == (12, 16, 3)


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
