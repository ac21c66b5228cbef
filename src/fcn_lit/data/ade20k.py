"""ADE20K (the SceneParsing challenge release): 150 classes, label 0 ("other") void."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fcn_lit.data.base import (
    IGNORE_INDEX,
    SegmentationDataset,
    check_labels,
    check_sizes,
    packaged_list,
    read_image,
    read_index_png,
    require_dir,
)
from fcn_lit.errors import DataNotFoundError

ADE20K_FIX = (
    "Point data.root at the folder holding ADEChallengeData2016/ (images/ and annotations/, each with "
    "training/ and validation/): unzip http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip."
)


class ADE20K(SegmentationDataset):
    """ADEChallengeData2016/images/<split>/<id>.jpg and annotations/<split>/<id>.png, `split` one of
    "training" and "validation"; annotation 0 ("other objects") becomes 255, 1..150 become 0..149."""

    splits = ("training", "validation")
    benchmark_ids = tuple(range(1, 151))  # the challenge's annotation values; 0 ("other") is never predicted

    def __init__(self, root: Path | str, split: str = "training", skip_bad_samples: bool = False) -> None:
        super().__init__(root, split, skip_bad_samples)
        self.class_names = packaged_list("classes/ade20k.txt")
        self.base = self.root / "ADEChallengeData2016"
        images = require_dir(self.base / "images" / split, "ADE20K folder", ADE20K_FIX)
        require_dir(self.base / "annotations" / split, "ADE20K folder", ADE20K_FIX)
        self.ids = sorted(p.stem for p in images.glob("*.jpg"))
        if not self.ids:
            raise DataNotFoundError(f"no .jpg images in {images}. {ADE20K_FIX}")

    def paths(self, sample_id: str) -> dict[str, Path]:
        return {
            "image": self.base / "images" / self.split / f"{sample_id}.jpg",
            "mask": self.base / "annotations" / self.split / f"{sample_id}.png",
        }

    def load(self, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        paths = self.paths(sample_id)
        image = read_image(paths["image"], self.exif_orientation)
        labels = read_index_png(paths["mask"]).astype(np.int64) - 1
        labels[labels == -1] = IGNORE_INDEX
        check_sizes(image, labels, paths["image"], paths["mask"])
        return image, check_labels(labels, self.num_classes, paths["mask"])
