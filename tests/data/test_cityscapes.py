"""Cityscapes: a tiny on-disk layout, labels checked pixel for pixel against cityscapesScripts' table,
and a training step through the config."""

import numpy as np
import pytest
from official_eval import LABELS
from PIL import Image
from train_step import train_one_step

from fcn_lit.data import Cityscapes


def write_cityscapes(root, split, stems, size=(24, 40), seed=0):
    """leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png, gtFine/<split>/<city>/<stem>_gtFine_labelIds.png."""
    rng = np.random.default_rng(seed)
    written = {}
    for stem in stems:
        city = stem.split("_")[0]
        image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        label_ids = rng.integers(0, 34, size=size).astype(np.uint8)
        for folder, array, suffix in (("leftImg8bit", image, "leftImg8bit"), ("gtFine", label_ids, "gtFine_labelIds")):
            path = root / folder / split / city / f"{stem}_{suffix}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(path)
        written[f"{city}/{stem}"] = (image, label_ids)
    return written


def test_cityscapes_maps_the_34_label_ids_to_the_19_train_ids(tmp_path):
    written = write_cityscapes(tmp_path, "val", ["frankfurt_000000_000294", "lindau_000001_000019"])
    ds = Cityscapes(tmp_path, "val")
    assert ds.ids == sorted(written) and ds.num_classes == 19 and ds.class_names[0] == "road"
    assert ds.class_names[18] == "bicycle" and ds.ignore_index == 255
    train_id = {label.id: label.trainId for label in LABELS if label.id >= 0}
    for i, sample_id in enumerate(ds.ids):
        image, target = ds[i]
        expected_image, label_ids = written[sample_id]
        np.testing.assert_array_equal(image, expected_image)
        np.testing.assert_array_equal(target, np.vectorize(train_id.get)(label_ids))
        assert target.dtype == np.int64
    # labels.py's colours: road, sidewalk, ..., bicycle
    assert ds.palette.shape == (19, 3) and ds.palette[0].tolist() == [128, 64, 128]
    assert ds.palette[18].tolist() == [119, 11, 32]


def test_cityscapes_missing_root_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/leftImg8bit/train.*gtFine"):
        Cityscapes(tmp_path, "train")


@pytest.mark.slow
def test_cityscapes_trains_a_step_through_its_config(tmp_path):
    write_cityscapes(tmp_path / "cityscapes", "train", ["aachen_000000_000019", "aachen_000001_000019"])
    write_cityscapes(tmp_path / "cityscapes", "val", ["frankfurt_000000_000294"], seed=1)
    results = train_one_step(tmp_path / "run", "cityscapes", tmp_path / "cityscapes", "data.crop_size=[16,32]",
                             "num_pictures=1")
    assert 0 <= results["test"]["mean_iu"] <= 1
    assert list(results["test"]["per_category_iu"]) == ["flat", "construction", "object", "nature", "sky", "human", "vehicle"]
    assert Image.open(results["pictures"]).size[0] > 0
