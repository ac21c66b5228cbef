import numpy as np
import pytest
import scipy.io
from ondisk import SCENES, write_mat, write_siftflow
from PIL import Image

from fcn_lit.data import SIFTFlow


def reference_shift(labels):
    """siftflow_layers.py: geometric -1 -> 0, then both minus 1 in uint8 (void -> 255)."""
    labels = labels.copy()
    labels[labels == -1] = 0
    return labels.astype(np.uint8) - np.uint8(1)


def test_siftflow_targets_are_semantic_and_geometric_shifted_like_the_reference(tmp_path):
    written = write_siftflow(tmp_path, {"trainval": ["coast_a", "street_b"], "test": ["forest_c"]})
    ds = SIFTFlow(tmp_path, "trainval")
    assert ds.num_classes == 33 and ds.class_names[8] == "cow" and ds.geometric_names == ["sky", "horizontal", "vertical"]
    for i, sample_id in enumerate(ds.ids):
        image, target = ds[i]
        semantic, geometric = written[sample_id]
        assert set(target) == {"semantic", "geometric"}
        np.testing.assert_array_equal(target["semantic"], reference_shift(semantic.astype(np.int64)))
        np.testing.assert_array_equal(target["geometric"], reference_shift(geometric.astype(np.int64)))
        assert target["semantic"].dtype == np.int64 and (target["geometric"] == 255).any()
        np.testing.assert_array_equal(image, np.asarray(Image.open(ds.paths(sample_id)["image"]).convert("RGB")))


def test_siftflow_leaves_out_the_two_unannotated_images(tmp_path):
    write_siftflow(tmp_path, {"trainval": ["highway_bost181", "coast_a", "street_urb506"]})
    assert SIFTFlow(tmp_path, "trainval").ids == ["coast_a"]


def test_siftflow_datamodule_exposes_two_heads_and_the_unscored_classes(tmp_path):
    from fcn_lit.data import SegmentationDataModule

    write_siftflow(tmp_path, {"trainval": ["a", "b"], "test": ["c"]})
    dm = SegmentationDataModule(SIFTFlow, tmp_path, train_split="trainval", val_split="test", num_workers=0)
    assert dm.task_heads == {"semantic": 33, "geometric": 3} and dm.num_classes == 33
    assert [dm.class_names[i] for i in dm.excluded_classes["semantic"]] == ["cow", "desert", "moon"]
    dm.setup("fit")
    images, targets = next(iter(dm.train_dataloader()))
    assert images.shape == (1, 3, 16, 16)
    assert targets["semantic"].shape == targets["geometric"].shape == (1, 16, 16)


@pytest.mark.realdata
def test_siftflow_reads_the_real_label_matrices(realdata, tmp_path):
    real = realdata / "siftflow"
    for folder in ("Images", "SemanticLabels"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / SCENES).symlink_to(real / folder / SCENES)
    ids = (real / "trainval.txt").read_text().split() + (real / "unannotated.txt").read_text().split()
    rng = np.random.default_rng(0)
    for sample_id in ids:  # SIFT Flow's GeoLabels are not among the real samples: write them
        write_mat(tmp_path / "GeoLabels" / SCENES / f"{sample_id}.mat", S=rng.integers(-1, 4, (256, 256)))
    (tmp_path / "trainval.txt").write_text("\n".join(ids))
    ds = SIFTFlow(tmp_path, "trainval")
    assert len(ds) == len(ids) - 2 and "highway_bost181" not in ds.ids
    for i, sample_id in enumerate(ds.ids):
        image, target = ds[i]
        raw = scipy.io.loadmat(real / "SemanticLabels" / SCENES / f"{sample_id}.mat")["S"]
        np.testing.assert_array_equal(target["semantic"], reference_shift(raw.astype(np.int64)))
        assert image.shape == (256, 256, 3)
