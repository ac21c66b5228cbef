"""PASCAL-Context, the 59-class task: VOC2010 images, trainval/{id}.mat LabelMap (459 labels)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from fcn_lit.data.base import (
    CaffeMean,
    SegmentationDataset,
    check_sizes,
    packaged_list,
    read_image,
    read_mat,
    read_split,
    require_dir,
)
from fcn_lit.errors import BadSampleError

CONTEXT_FIX = (
    "Point data.root at a folder holding VOC2010/ (JPEGImages/, ImageSets/Main/) and PASCAL-Context's trainval/ "
    "(the .mat files of https://cs.stanford.edu/~roozbeh/pascal-context/trainval.tar.gz)."
)
# The 59-class list names three classes differently from the full label list.
RENAMED = {"diningtable": "table", "bedcloth": "bedclothes", "clothes": "cloth"}


@cache
def label_lookup() -> np.ndarray:
    """Full label index (1..459) -> 59-class index (1..59); every other label -> 0, background."""
    full = [name.replace(" ", "") for name in packaged_list("classes/context459.txt")]
    lookup = np.zeros(len(full) + 1, dtype=np.int64)
    for index, name in enumerate(packaged_list("classes/context59.txt")[1:], start=1):
        lookup[full.index(RENAMED.get(name, name)) + 1] = index
    return lookup


def full_label_ids() -> tuple[int, ...]:
    """59-class index -> its label in the full list (labels.txt, 1..459); background -> 0, since it
    merges the 400 other labels (and unlabelled pixels), which cannot be told apart again."""
    lookup = label_lookup()
    return (0, *(int(np.flatnonzero(lookup == index)[0]) for index in range(1, lookup.max() + 1)))


class PASCALContext(SegmentationDataset):
    """PASCAL-Context 59 classes plus background (a trained class: 60 outputs, no void). It has no
    evaluation server: format=benchmark writes the full list's labels (16-bit PNGs, they pass 255)."""

    splits = ("train", "val")
    benchmark_ids = full_label_ids()
    caffe_means = {"color": CaffeMean((104.007, 116.669, 122.679), "float32")}  # pascalcontext_layers.py

    def __init__(self, root: Path | str, split: str = "train", skip_bad_samples: bool = False) -> None:
        super().__init__(root, split, skip_bad_samples)
        self.class_names = packaged_list("classes/context59.txt")
        self.voc_root = self.root / "VOC2010"
        require_dir(self.voc_root / "JPEGImages", "VOC2010 folder", CONTEXT_FIX)
        require_dir(self.root / "trainval", "PASCAL-Context folder", CONTEXT_FIX)
        self.ids = read_split(self.voc_root / "ImageSets" / "Main" / f"{split}.txt", CONTEXT_FIX)

    def paths(self, sample_id: str) -> dict[str, Path]:
        return {
            "image": self.voc_root / "JPEGImages" / f"{sample_id}.jpg",
            "mask": self.root / "trainval" / f"{sample_id}.mat",
        }

    def load(self, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        paths = self.paths(sample_id)
        image = read_image(paths["image"], self.exif_orientation)
        full = np.asarray(read_mat(paths["mask"], "LabelMap")).astype(np.int64)
        lookup = label_lookup()
        outside = (full < 0) | (full >= len(lookup))
        if outside.any():
            raise BadSampleError(
                paths["mask"],
                f"LabelMap values {np.unique(full[outside])[:10].tolist()} are outside PASCAL-Context's "
                f"{len(lookup) - 1} labels; re-download trainval.tar.gz",
            )
        check_sizes(image, full, paths["image"], paths["mask"])
        return image, lookup[full]
