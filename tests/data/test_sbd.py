import numpy as np
import pytest
import scipy.io
from ondisk import write_sbd
from PIL import Image

from fcn_lit.data import SBD


def reference_label(path):
    """How the reference voc_layers.py reads SBD."""
    return scipy.io.loadmat(path)["GTcls"][0]["Segmentation"][0].astype(np.uint8)


def test_sbd_reads_gtcls_segmentation_written_with_scipy(tmp_path):
    root = tmp_path / "sbd" / "dataset"
    masks = write_sbd(root, {"train": 3, "val": 1})
    ds = SBD(root, "train")
    assert len(ds) == 3 and ds.num_classes == 21
    for i, sample_id in enumerate(ds.ids):
        image, target = ds[i]
        np.testing.assert_array_equal(target, masks[sample_id])
        np.testing.assert_array_equal(target, reference_label(root / "cls" / f"{sample_id}.mat"))
        np.testing.assert_array_equal(image, np.asarray(Image.open(root / "img" / f"{sample_id}.jpg").convert("RGB")))
    assert SBD(root, "val").ids == ["2008_000003"]


def test_sbd_wrong_root_names_the_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"SBD folder .*/img does not exist.*dataset/ folder.*benchmark.tgz"):
        SBD(tmp_path, "train")


@pytest.mark.realdata
@pytest.mark.parametrize("folder", ["sbd", "sbd_mindspore_fixture"])
def test_sbd_reads_the_real_mat_files(realdata, folder):
    root = realdata / folder / "dataset"
    ids = sorted(p.stem for p in (root / "cls").glob("*.mat"))
    ds = SBD(root, "train")
    ds.ids = ids  # every real sample, not only the split's
    for i, sample_id in enumerate(ids):
        image, target = ds[i]
        np.testing.assert_array_equal(target, reference_label(root / "cls" / f"{sample_id}.mat"))
        assert image.shape == (*target.shape, 3) and image.dtype == np.uint8
