"""The embedded data set: deterministic, in the exact VOC layout, reused, never half-written."""

import hashlib

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from fcn_lit.data.palette import voc_palette
from fcn_lit.data.synthetic import CLASS_NAMES, generate_synthetic

SMALL = dict(num_train=6, num_val=3, size=48)


def digest(root):
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f.relative_to(root).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def test_layout_is_voc(tmp_path):
    root = generate_synthetic(tmp_path / "syn", seed=3, **SMALL)
    train = (root / "ImageSets/Segmentation/train.txt").read_text().split()
    val = (root / "ImageSets/Segmentation/val.txt").read_text().split()
    assert len(train) == 6 and len(val) == 3 and not set(train) & set(val)
    assert (root / "class_names.txt").read_text().split() == list(CLASS_NAMES)
    for name in train + val:
        image = Image.open(root / "JPEGImages" / f"{name}.jpg")
        label = Image.open(root / "SegmentationClass" / f"{name}.png")
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (48, 48)
        assert label.mode == "P" and label.size == (48, 48)
        assert np.array_equal(np.array(label.getpalette()).reshape(-1, 3)[: len(CLASS_NAMES)],
                              voc_palette()[: len(CLASS_NAMES)])
        values = set(np.unique(np.array(label)).tolist())
        assert values <= set(range(len(CLASS_NAMES))) | {255}


def test_void_is_a_thin_band_on_object_borders(tmp_path):
    root = generate_synthetic(tmp_path / "syn", seed=1, num_train=20, num_val=1, size=64)
    for png in sorted((root / "SegmentationClass").glob("*.png")):
        label = np.array(Image.open(png))
        void = label == 255
        if not (label[~void] > 0).any():
            continue
        assert void.any(), f"{png.name}: objects without a void border"
        # Every void pixel is within 2 px of a labelled one: a band (two borders may touch), not a blob.
        touches_label = ndimage.binary_dilation(~void, structure=np.ones((3, 3)), iterations=2)
        assert (touches_label | ~void).all()
        assert void.mean() < 0.2


def test_deterministic_and_seeded(tmp_path):
    a = digest(generate_synthetic(tmp_path / "a", seed=7, **SMALL))
    b = digest(generate_synthetic(tmp_path / "b", seed=7, **SMALL))
    c = digest(generate_synthetic(tmp_path / "c", seed=8, **SMALL))
    assert a == b != c


def test_reused_not_rewritten(tmp_path):
    root = generate_synthetic(tmp_path / "syn", **SMALL)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    generate_synthetic(root, **SMALL)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == mtimes


def test_other_parameters_are_an_error_naming_the_folder(tmp_path):
    root = generate_synthetic(tmp_path / "syn", **SMALL)
    with pytest.raises(FileExistsError, match="syn.*delete"):
        generate_synthetic(root, **{**SMALL, "size": 32})


def test_foreign_folder_is_not_overwritten(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="mine"):
        generate_synthetic(tmp_path / "mine", **SMALL)
    assert (tmp_path / "mine" / "keep.txt").read_text() == "precious"
