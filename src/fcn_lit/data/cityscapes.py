"""Cityscapes, fine annotations: 2048x1024 street scenes, the 19 training classes of the benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fcn_lit.data.base import (
    IGNORE_INDEX,
    SegmentationDataset,
    check_sizes,
    packaged_list,
    read_image,
    read_index_png,
    require_dir,
)
from fcn_lit.errors import DataNotFoundError

CITYSCAPES_FIX = (
    "Point data.root at the folder holding leftImg8bit/ and gtFine/ (leftImg8bit_trainvaltest.zip and "
    "gtFine_trainvaltest.zip from https://www.cityscapes-dataset.com/downloads/, after registering)."
)
# cityscapesScripts' labels.py: label id -> train id (0..18); every other id (void, rare classes) -> 255.
TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
             26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
# labels.py's categories of the 19 train classes, in train id order (void holds no train class).
CATEGORIES = ("flat", "flat", "construction", "construction", "construction", "object", "object", "object", "nature",
              "nature", "sky", "human", "human", "vehicle", "vehicle", "vehicle", "vehicle", "vehicle", "vehicle")
# labels.py's colours of the 19 train classes, in train id order.
COLOURS = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
           (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
           (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32))


def train_id_lookup() -> np.ndarray:
    """A 256-entry table: gtFine label id -> train id, 255 for every id the benchmark does not train."""
    lookup = np.full(256, IGNORE_INDEX, dtype=np.int64)
    for label_id, train_id in TRAIN_IDS.items():
        lookup[label_id] = train_id
    return lookup


class Cityscapes(SegmentationDataset):
    """Cityscapes fine: `leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png` and
    `gtFine/<split>/<city>/<stem>_gtFine_labelIds.png`; the 34 label ids become the 19 train ids, all
    else 255. Ids are `<city>/<stem>`. Images are 2048x1024: train on crops (data.batching=crop)."""

    splits = ("train", "val", "test")
    benchmark_ids = tuple(sorted(TRAIN_IDS, key=TRAIN_IDS.get))  # train id -> label id, as its evaluator reads
    categories = CATEGORIES

    def __init__(self, root: Path | str, split: str = "train", skip_bad_samples: bool = False) -> None:
        super().__init__(root, split, skip_bad_samples)
        self.class_names = packaged_list("classes/cityscapes.txt")
        images = require_dir(self.root / "leftImg8bit" / split, "Cityscapes folder", CITYSCAPES_FIX)
        require_dir(self.root / "gtFine" / split, "Cityscapes folder", CITYSCAPES_FIX)
        self.ids = sorted(f"{p.parent.name}/{p.name.removesuffix('_leftImg8bit.png')}"
                          for p in images.glob("*/*_leftImg8bit.png"))
        if not self.ids:
            raise DataNotFoundError(f"no <city>/*_leftImg8bit.png images in {images}. {CITYSCAPES_FIX}")
        self.lookup = train_id_lookup()

    @classmethod
    def colours(cls, num_classes: int) -> np.ndarray:
        return np.array(COLOURS[:num_classes], dtype=np.uint8)

    def paths(self, sample_id: str) -> dict[str, Path]:
        return {
            "image": self.root / "leftImg8bit" / self.split / f"{sample_id}_leftImg8bit.png",
            "mask": self.root / "gtFine" / self.split / f"{sample_id}_gtFine_labelIds.png",
        }

    def load(self, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        paths = self.paths(sample_id)
        image = read_image(paths["image"], self.exif_orientation)
        label_ids = read_index_png(paths["mask"])
        check_sizes(image, label_ids, paths["image"], paths["mask"])
        return image, self.lookup[label_ids]
