import numpy as np
import pytest
from ondisk import random_mask, voc_colours, write_jpeg, write_palette_png
from PIL import Image

from fcn_lit.data import BadSampleError, SegmentationDataModule, SegmentationFolder


def make_folder(root, stems, rng, kind="palette"):
    masks = {}
    for stem in stems:
        write_jpeg(root / "images" / f"{stem}.jpg", rng, 10, 14)
        masks[stem] = random_mask(rng, 10, 14, 3)
        path = root / "masks" / f"{stem}.png"
        if kind == "palette":
            write_palette_png(path, masks[stem])
        elif kind == "grey":
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(masks[stem], mode="L").save(path)
        else:
            palette = np.asarray(voc_colours(), np.uint8).reshape(-1, 3)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(palette[masks[stem]]).save(path)
    (root / "class_names.txt").write_text("sky\nroad\ncar\n")
    return masks


@pytest.mark.parametrize("kind", ["palette", "grey", "color"])
def test_folder_pairs_images_and_masks_by_stem(tmp_path, kind):
    masks = make_folder(tmp_path, ["b", "a", "c"], np.random.default_rng(0), kind)
    color_map = {"0,0,0": 0, "128,0,0": 1, "0,128,0": 2, "224,224,192": 255} if kind == "color" else None
    ds = SegmentationFolder(tmp_path, class_names=tmp_path / "class_names.txt",
                            mask_format="color" if color_map else "index", color_map=color_map)
    assert ds.ids == ["a", "b", "c"] and ds.class_names == ["sky", "road", "car"]
    for i, stem in enumerate(ds.ids):
        image, target = ds[i]
        np.testing.assert_array_equal(target, masks[stem])
        np.testing.assert_array_equal(image, np.asarray(Image.open(tmp_path / "images" / f"{stem}.jpg")))


def test_folder_unknown_colour_names_the_file_and_the_colour(tmp_path):
    make_folder(tmp_path, ["a"], np.random.default_rng(0), "color")
    ds = SegmentationFolder(tmp_path, class_names=["sky", "road", "car"],
                            mask_format="color", color_map={"0,0,0": 0, "128,0,0": 1, "0,128,0": 2})
    with pytest.raises(BadSampleError, match=r"masks/a.png: colours \['224,224,192'\] are not in data.color_map"):
        ds[0]


def test_folder_datamodule_reads_split_lists_next_to_the_folders(tmp_path):
    make_folder(tmp_path, ["a", "b", "c", "d"], np.random.default_rng(1))
    (tmp_path / "train.txt").write_text("a\nb\nc\n")
    (tmp_path / "val.txt").write_text("d\n")
    dm = SegmentationDataModule(SegmentationFolder, tmp_path, class_names=str(tmp_path / "class_names.txt"),
                                batching="pad", batch_size=2, num_workers=0)
    assert dm.num_classes == 3
    dm.setup("fit")
    assert dm.train_dataset.ids == ["a", "b", "c"] and dm.val_dataset.ids == ["d"]
    images, targets = next(iter(dm.train_dataloader()))
    assert images.shape == (2, 3, 10, 14) and targets.shape == (2, 10, 14)
