"""ADE20K: a tiny on-disk layout, labels checked pixel for pixel (0 void, 1..150 -> 0..149), and a
training step through the config."""

import numpy as np
import pytest
from PIL import Image
from train_step import train_one_step

from fcn_lit.data import ADE20K


def write_ade20k(root, split, ids, size=(20, 28), seed=0):
    """ADEChallengeData2016/images/<split>/<id>.jpg and annotations/<split>/<id>.png (0..150)."""
    rng = np.random.default_rng(seed)
    written = {}
    for sample_id in ids:
        image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        labels = rng.integers(0, 151, size=size).astype(np.uint8)
        base = root / "ADEChallengeData2016"
        for folder, suffix in (("images", ".jpg"), ("annotations", ".png")):
            (base / folder / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(base / "images" / split / f"{sample_id}.jpg", quality=95)
        Image.fromarray(labels).save(base / "annotations" / split / f"{sample_id}.png")
        written[sample_id] = labels
    return written


def test_ade20k_makes_label_0_void_and_shifts_the_150_classes(tmp_path):
    written = write_ade20k(tmp_path, "validation", ["ADE_val_00000002", "ADE_val_00000001"])
    ds = ADE20K(tmp_path, "validation")
    assert ds.ids == ["ADE_val_00000001", "ADE_val_00000002"] and ds.num_classes == 150
    assert ds.class_names[0] == "wall" and ds.class_names[149] == "flag"
    for i, sample_id in enumerate(ds.ids):
        image, target = ds[i]
        labels = written[sample_id].astype(np.int64)
        np.testing.assert_array_equal(target, np.where(labels == 0, 255, labels - 1))
        assert image.shape == (20, 28, 3)


def test_ade20k_missing_root_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/ADEChallengeData2016/images/training.*ADEChallengeData2016.zip"):
        ADE20K(tmp_path, "training")


@pytest.mark.slow
def test_ade20k_trains_a_step_through_its_config(tmp_path):
    write_ade20k(tmp_path / "ade20k", "training", ["ADE_train_00000001", "ADE_train_00000002"])
    write_ade20k(tmp_path / "ade20k", "validation", ["ADE_val_00000001"], seed=1)
    results = train_one_step(tmp_path / "run", "ade20k", tmp_path / "ade20k", "data.crop_size=16", "data.batch_size=2",
                             "num_pictures=0")
    assert 0 <= results["test"]["mean_iu"] <= 1
