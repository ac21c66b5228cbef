"""Training data from phones and image editors: EXIF orientation is refused by default (naming the file
and both settings), applied or ignored on request; JPEG masks are named as such; 16/32-bit images are
scaled to 8 bits."""

from pathlib import Path

import numpy as np
import pytest
from ondisk import write_palette_png
from PIL import Image
from rich.console import Console

from fcn_lit.data import BadSampleError, DataNotFoundError, SegmentationDataModule, SegmentationFolder
from fcn_lit.data.base import read_image
from fcn_lit.data.check import main as check_main

ROTATED_90_CW = 6  # EXIF orientation: viewers turn the stored pixels 90 degrees clockwise


def exif(orientation: int) -> Image.Exif:
    tags = Image.Exif()
    tags[0x0112] = orientation
    return tags


def write_folder(root: Path, rng: np.random.Generator, size: int = 16) -> dict[str, np.ndarray]:
    """A folder data set of square photos; "phone" is stored rotated with EXIF orientation 6 and its
    mask drawn on the photo as displayed. Returns {stem: displayed image}."""
    shown = {}
    for stem in ("plain", "phone"):
        shown[stem] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        mask = rng.integers(0, 3, (size, size), dtype=np.uint8)
        write_palette_png(root / "masks" / f"{stem}.png", mask)
    (root / "images").mkdir()
    Image.fromarray(shown["plain"]).save(root / "images" / "plain.png")
    stored = np.ascontiguousarray(np.rot90(shown["phone"], k=1))  # counter-clockwise of the display
    Image.fromarray(stored).save(root / "images" / "phone.png", exif=exif(ROTATED_90_CW))
    (root / "train.txt").write_text("phone\nplain\n")
    return shown


def folder_module(root: Path, **settings) -> SegmentationDataModule:
    dm = SegmentationDataModule(SegmentationFolder, root, val_split=None, batching="pad", batch_size=2,
                                class_names=["a", "b", "c"], num_workers=0, **settings)
    dm.setup("fit")
    return dm


def test_exif_orientation_is_refused_by_default_naming_the_file_and_both_settings(tmp_path):
    write_folder(tmp_path, np.random.default_rng(0))
    dataset = folder_module(tmp_path).train_dataset
    assert dataset.ids == ["phone", "plain"]
    with pytest.raises(BadSampleError) as raised:
        dataset[0]
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'images' / 'phone.png'}: EXIF orientation 6")
    assert "data.exif_orientation=apply" in message and "data.exif_orientation=ignore" in message
    dataset[1]  # photos without an orientation load as before


def test_exif_orientation_applied_or_ignored_on_request(tmp_path):
    shown = write_folder(tmp_path, np.random.default_rng(0))
    applied, _ = folder_module(tmp_path, exif_orientation="apply").train_dataset[0]
    np.testing.assert_array_equal(applied, shown["phone"])
    ignored, _ = folder_module(tmp_path, exif_orientation="ignore").train_dataset[0]
    np.testing.assert_array_equal(ignored, np.rot90(shown["phone"], k=1))
    with pytest.raises(ValueError, match=r"data.exif_orientation='rotate' is not one of"):
        SegmentationDataModule(SegmentationFolder, tmp_path, exif_orientation="rotate")


def test_check_names_rotated_photos_and_jpeg_masks(tmp_path):
    rng = np.random.default_rng(1)
    write_folder(tmp_path, rng)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "images" / "drawn.jpg")
    Image.fromarray(rng.integers(0, 3, (16, 16), dtype=np.uint8)).save(tmp_path / "masks" / "drawn.jpg")
    (tmp_path / "train.txt").write_text("phone\nplain\ndrawn\n")
    (tmp_path / "class_names.txt").write_text("a\nb\nc\n")
    console = Console(record=True, width=400)
    status = check_main(["data=folder", f"data.root={tmp_path}", "data.val_split=null",
                         f"data.class_names={tmp_path / 'class_names.txt'}", "data.num_workers=0"], console=console)
    out = console.export_text()
    assert status == 1
    assert f"{tmp_path / 'images' / 'phone.png'}: EXIF orientation 6" in out
    assert f"{tmp_path / 'masks' / 'drawn.jpg'} is there, but masks must be PNGs" in out


def test_jpeg_mask_where_a_png_is_expected_is_named(tmp_path):
    rng = np.random.default_rng(2)
    write_folder(tmp_path, rng)
    (tmp_path / "masks" / "plain.png").rename(tmp_path / "masks" / "plain.jpg")
    with pytest.raises(DataNotFoundError, match=r"masks/plain.png .*masks/plain.jpg is there, but masks must be PNGs"):
        folder_module(tmp_path, exif_orientation="apply")
    # JPEG data under a .png name: greyscale, so it would otherwise pass as class indices.
    Image.fromarray(rng.integers(0, 3, (16, 16), dtype=np.uint8)).save(tmp_path / "masks" / "plain.png", format="JPEG")
    dataset = folder_module(tmp_path, exif_orientation="apply").train_dataset
    with pytest.raises(BadSampleError, match=r"plain.png: mask is a JPEG file under a .png name"):
        dataset[1]


def test_16_and_32_bit_images_are_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 12).astype(np.uint16).reshape(3, 4)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    Image.fromarray(ramp.astype(np.int32)).save(tmp_path / "deep32.tif")
    Image.fromarray(ramp.astype(np.float32) / 65535).save(tmp_path / "unit.tif")
    assert [Image.open(tmp_path / n).mode for n in ("deep.png", "deep32.tif", "unit.tif")] == ["I;16", "I", "F"]
    expected = np.rint(ramp / 257.0).astype(np.uint8)
    for name in ("deep.png", "deep32.tif", "unit.tif"):
        image = read_image(tmp_path / name)
        assert image.shape == (3, 4, 3) and image.dtype == np.uint8
        for channel in range(3):
            np.testing.assert_array_equal(image[..., channel], expected, err_msg=name)
