"""A user's own data: images and masks in two folders, paired by file stem."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fcn_lit.data.base import (
    SegmentationDataset,
    check_labels,
    check_sizes,
    read_image,
    read_index_png,
    read_split,
    require_dir,
)
from fcn_lit.errors import BadSampleError, DataNotFoundError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
FOLDER_FIX = "Set data.images_dir and data.masks_dir (default <data.root>/images and <data.root>/masks)."


def parse_color_map(color_map: Mapping) -> dict[int, int]:
    """{"r,g,b" or (r, g, b): class} -> {packed 0xRRGGBB: class}."""
    packed = {}
    for colour, index in color_map.items():
        rgb = [int(v) for v in (colour.split(",") if isinstance(colour, str) else colour)]
        if len(rgb) != 3:
            raise ValueError(f"data.color_map key {colour!r} is not a colour: write it as 'r,g,b'")
        packed[(rgb[0] << 16) | (rgb[1] << 8) | rgb[2]] = int(index)
    return packed


class SegmentationFolder(SegmentationDataset):
    """Images in `images_dir` (default `<root>/images`), masks `<stem>.png` in `masks_dir` (`<root>/masks`).

    Masks are palette or greyscale PNGs of class indices (`mask_format="index"`), or RGB colour masks
    (`mask_format="color"`) translated by `color_map` ({"r,g,b": class}, 255 for void).
    `split` is None (every pair), a .txt file of stems, or a name read as `<images_dir>/../<name>.txt`.
    `class_names` is a list or a file with one name per line.
    """

    def __init__(
        self,
        root: Path | str,
        split: str | Path | None = None,
        skip_bad_samples: bool = False,
        images_dir: Path | str | None = None,
        masks_dir: Path | str | None = None,
        class_names: Sequence[str] | Path | str = (),
        mask_format: str = "index",
        color_map: Mapping | None = None,
    ) -> None:
        self.images_dir = require_dir(Path(images_dir or Path(root) / "images"), "images folder", FOLDER_FIX)
        self.masks_dir = require_dir(Path(masks_dir or Path(root) / "masks"), "masks folder", FOLDER_FIX)
        super().__init__(self.images_dir.parent, str(split), skip_bad_samples)
        if isinstance(class_names, str | Path):
            class_names = read_split(Path(class_names), "Write one class name per line, in index order.")
        if not class_names:
            raise ValueError("data.class_names is empty: give the class names, or a file with one per line")
        self.class_names = list(class_names)
        if mask_format not in ("index", "color"):
            raise ValueError(f"data.mask_format={mask_format!r} is not 'index' or 'color'")
        if mask_format == "color" and not color_map:
            raise ValueError("data.mask_format=color needs data.color_map: {'r,g,b': class index, ...}")
        self.color_map = parse_color_map(color_map) if mask_format == "color" else None
        self.images = {p.stem: p for p in sorted(self.images_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
        if split is None:
            self.ids = sorted(self.images)
        else:
            split_file = Path(split) if str(split).endswith(".txt") else self.images_dir.parent / f"{split}.txt"
            self.ids = read_split(split_file, "List one image stem per line, or set the split to null for all.")
        if not self.ids:
            raise DataNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {self.images_dir}. {FOLDER_FIX}")

    def paths(self, sample_id: str) -> dict[str, Path]:
        image = self.images.get(sample_id, self.images_dir / f"{sample_id}.jpg")
        return {"image": image, "mask": self.masks_dir / f"{sample_id}.png"}

    def load(self, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        paths = self.paths(sample_id)
        image = read_image(paths["image"], self.exif_orientation)
        mask = self._read_mask(paths["mask"])
        check_sizes(image, mask, paths["image"], paths["mask"])
        return image, check_labels(mask, self.num_classes, paths["mask"])

    def _read_mask(self, path: Path) -> np.ndarray:
        if self.color_map is None:
            return read_index_png(path)
        rgb = read_image(path, "ignore").astype(np.int64)
        packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        colours, inverse = np.unique(packed, return_inverse=True)
        unknown = [c for c in colours.tolist() if c not in self.color_map]
        if unknown:
            shown = [f"{c >> 16},{(c >> 8) & 255},{c & 255}" for c in unknown[:5]]
            raise BadSampleError(path, f"colours {shown} are not in data.color_map; add them (255 for void)")
        return np.array([self.color_map[c] for c in colours.tolist()])[inverse].reshape(packed.shape)
