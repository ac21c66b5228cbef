"""SIFT Flow: 2,688 outdoor scenes with 33 semantic and 3 geometric classes (paper Section 5)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from fcn_lit.data.base import (
    CaffeMean,
    IGNORE_INDEX,
    SegmentationDataset,
    check_labels,
    check_sizes,
    packaged_list,
    read_image,
    read_mat,
    read_split,
    require_dir,
)

log = logging.getLogger(__name__)

SCENES = "spatial_envelope_256x256_static_8outdoorcategories"
# Two images have no annotation and three classes never occur in test: the paper leaves both out.
UNANNOTATED = ("highway_bost181", "street_urb506")
ABSENT_FROM_TEST = ("cow", "desert", "moon")
GEOMETRIC_CLASSES = ("sky", "horizontal", "vertical")
SIFTFLOW_FIX = (
    "Point data.root at the unzipped SiftFlowDataset folder holding Images/, SemanticLabels/, GeoLabels/ "
    "(each with spatial_envelope_256x256_static_8outdoorcategories/) and trainval.txt / test.txt from "
    "the FCN release (data/sift-flow); download http://www.cs.unc.edu/~jtighe/Papers/ECCV10/siftflow/SiftFlowDataset.zip."
)


def _shift(labels: np.ndarray) -> np.ndarray:
    """Classes 1..K -> 0..K-1, void 0 -> 255 (the reference subtracts 1 in uint8)."""
    labels = labels.astype(np.int64) - 1
    labels[labels == -1] = IGNORE_INDEX
    return labels


class SIFTFlow(SegmentationDataset):
    """SIFT Flow; targets are dicts `{"semantic": HxW (33 classes), "geometric": HxW (3 classes)}`."""

    geometric_names = list(GEOMETRIC_CLASSES)
    splits = ("trainval", "test")
    caffe_means = {"color": CaffeMean((114.578, 115.294, 108.353), "float32")}  # siftflow_layers.py

    @property
    def heads(self) -> dict[str, int]:
        """One trunk, two heads: semantic (33 classes) and geometric (3), paper Section 5."""
        return {"semantic": self.num_classes, "geometric": len(GEOMETRIC_CLASSES)}

    @property
    def excluded_classes(self) -> dict[str, list[int]]:
        """Cow, desert and moon never occur in test: the paper leaves them out of scoring."""
        return {"semantic": [self.class_names.index(c) for c in ABSENT_FROM_TEST]}

    def __init__(self, root: Path | str, split: str = "trainval", skip_bad_samples: bool = False) -> None:
        super().__init__(root, split, skip_bad_samples)
        self.class_names = packaged_list("classes/siftflow_semantic.txt")
        for folder in ("Images", "SemanticLabels", "GeoLabels"):
            require_dir(self.root / folder / SCENES, "SIFT Flow folder", SIFTFLOW_FIX)
        ids = read_split(self.root / f"{split}.txt", SIFTFLOW_FIX)
        self.ids = [i for i in ids if i not in UNANNOTATED]
        if len(self.ids) < len(ids):
            log.info("left out the unannotated SIFT Flow images %s", [i for i in ids if i in UNANNOTATED])

    def paths(self, sample_id: str) -> dict[str, Path]:
        return {
            "image": self.root / "Images" / SCENES / f"{sample_id}.jpg",
            "semantic": self.root / "SemanticLabels" / SCENES / f"{sample_id}.mat",
            "geometric": self.root / "GeoLabels" / SCENES / f"{sample_id}.mat",
        }

    def load(self, sample_id: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        paths = self.paths(sample_id)
        image = read_image(paths["image"], self.exif_orientation)
        semantic = _shift(np.asarray(read_mat(paths["semantic"], "S")))
        geometric = np.asarray(read_mat(paths["geometric"], "S")).astype(np.int64)
        geometric[geometric == -1] = 0  # geometric void is -1 on disk
        geometric = _shift(geometric)
        target = {}
        for key, labels, num_classes in (
            ("semantic", semantic, self.num_classes),
            ("geometric", geometric, len(GEOMETRIC_CLASSES)),
        ):
            check_sizes(image, labels, paths["image"], paths[key])
            target[key] = check_labels(labels, num_classes, paths[key])
        return image, target
