from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from fcn_lit.data import VOC, SegmentationDataModule

CONF = Path(__file__).resolve().parents[2] / "conf"


def compose_data(name: str, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(overrides=[f"+data={name}", *overrides]).data


@pytest.mark.parametrize(
    "batching,batch_size,train_shape",
    [("single", 1, None), ("pad", 2, None), ("crop", 2, (2, 3, 16, 16))],
)
def test_batches_for_each_batching(make_voc, batching, batch_size, train_shape):
    root, masks = make_voc({"train": 4, "val": 3})
    dm = SegmentationDataModule(
        VOC, root, val_split="val", batching=batching, batch_size=batch_size, crop_size=16, num_workers=0
    )
    dm.prepare_data()
    dm.setup("fit")
    images, targets = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.float32 and targets.dtype == torch.int64
    assert images.shape[0] == targets.shape[0] == batch_size and images.shape[1] == 3
    assert images.shape[2:] == targets.shape[1:]
    if train_shape:
        assert images.shape == train_shape
    # evaluation keeps whole images: the first val sample comes back unchanged (padding is void)
    images, targets = next(iter(dm.val_dataloader()))
    first = dm.val_dataset.ids[0]
    h, w = masks[first].shape
    np.testing.assert_array_equal(targets[0, :h, :w].numpy(), masks[first])
    assert (targets[0, h:] == 255).all() and (targets[0, :, w:] == 255).all()
    raw_image, _ = dm.val_dataset[0]
    np.testing.assert_array_equal(dm.denormalize(images[0])[:h, :w], raw_image)


def test_attributes_follow_the_data_set(make_voc):
    root, _ = make_voc()
    dm = SegmentationDataModule(VOC, root, normalization="caffe")
    assert dm.num_classes == 21 and dm.class_names[0] == "background" and dm.ignore_index == 255
    assert dm.palette.shape == (21, 3) and dm.palette.dtype == np.uint8
    assert dm.task_heads is None and dm.in_channels == 3


def test_single_batching_rejects_a_larger_batch(tmp_path):
    with pytest.raises(ValueError, match="data.batch_size=4 with data.batching=single"):
        SegmentationDataModule(VOC, tmp_path, batch_size=4, batching="single")


def test_voc_config_composes_and_names_the_missing_root(tmp_path):
    cfg = compose_data("voc", f"+paths.data_dir={tmp_path}")
    assert cfg.root == f"{tmp_path}/VOCdevkit/VOC2012" and cfg.val_split == "seg11valid"
    dm = instantiate(cfg)
    with pytest.raises(FileNotFoundError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert f"{tmp_path}/VOCdevkit/VOC2012/JPEGImages" in message and "data.download=true" in message


def test_synthetic_config_generates_then_reads_the_voc_layout(tmp_path):
    cfg = compose_data("synthetic", f"+paths.data_dir={tmp_path}", "data.generator.num_train=4",
                       "data.generator.num_val=2", "data.generator.size=32", "data.batch_size=4")
    dm = instantiate(cfg)
    dm.prepare_data()
    names = (tmp_path / "synthetic" / "class_names.txt").read_text().split()
    assert dm.class_names == names and dm.num_classes == len(names)
    dm.setup("fit")
    assert len(dm.train_dataset) == 4
    images, targets = next(iter(dm.train_dataloader()))
    assert images.shape[0] == cfg.batch_size
    assert set(targets.unique().tolist()) <= set(range(dm.num_classes)) | {255}


@pytest.mark.parametrize("name", ["voc", "sbd", "voc_sbd", "nyud", "siftflow", "context", "folder", "synthetic"])
def test_every_config_composes_with_the_shared_keys(tmp_path, name):
    cfg = compose_data(name, f"+paths.data_dir={tmp_path}")
    assert cfg._target_ == "fcn_lit.data.SegmentationDataModule" and cfg.name == name
    assert cfg.root.startswith(str(tmp_path))
    for key in ("train_split", "val_split", "test_split", "batch_size", "num_workers", "batching", "crop_size",
                "augmentation", "normalization", "download", "skip_bad_samples"):
        assert key in cfg


def test_voc_sbd_trains_on_sbd_and_validates_on_voc(tmp_path, make_voc):
    from ondisk import write_sbd

    voc_root, voc_masks = make_voc({"seg11valid": 2})
    sbd_masks = write_sbd(tmp_path / "sbd" / "dataset", {"train": 3})
    cfg = compose_data("voc_sbd", f"+paths.data_dir={tmp_path}", "data.num_workers=0")
    dm = instantiate(cfg)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.train_dataset.ids == list(sbd_masks) and dm.val_dataset.ids == list(voc_masks)
    assert type(dm.train_dataset).__name__ == "SBD" and type(dm.val_dataset).__name__ == "VOC"


def test_voc_sbd_missing_roots_name_both_folders(tmp_path):
    dm = instantiate(compose_data("voc_sbd", f"+paths.data_dir={tmp_path}"))
    with pytest.raises(FileNotFoundError) as err:
        dm.prepare_data()
    assert f"{tmp_path}/sbd/dataset/img" in str(err.value) and "benchmark.tgz" in str(err.value)
    assert f"{tmp_path}/VOCdevkit/VOC2012/JPEGImages" in str(err.value) and "VOCtrainval" in str(err.value)
