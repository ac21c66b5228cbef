"""PASCAL VOC 2011/2012 segmentation: JPEGImages/, SegmentationClass/ palette PNGs, 255 = void."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fcn_lit.data.base import (
    CaffeMean,
    SegmentationDataset,
    check_labels,
    check_sizes,
    packaged_list,
    read_image,
    read_index_png,
    read_split,
    require_dir,
)
from fcn_lit.data.download import Archive, download_archive
from fcn_lit.models.pretrained import CAFFE

VOC_FIX = (
    "Point data.root at the folder holding JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/ "
    "(e.g. <data_dir>/VOCdevkit/VOC2012), or set data.download=true to fetch VOC2012 "
    "(http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar)."
)


VOC2012 = Archive(
    "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
    "6cd6e144f989b92b3379bac3b3de84fd",
    "VOCdevkit/VOC2012",
)


class VOC(SegmentationDataset):
    """PASCAL VOC segmentation; `split` names ImageSets/Segmentation/{split}.txt.

    `split="seg11valid"` reads the 736 ids FCN validates on (VOC2011 val minus SBD train) from the
    copy shipped with this package when the root has none.
    `download=True` fetches VOC2012 (or `mirror`: {url, md5}) when the root is empty.
    """

    splits = ("train", "val", "trainval", "seg11valid")
    caffe_means = {"color": CaffeMean(CAFFE.mean)}  # voc_layers.py subtracts the ILSVRC mean
    archive = VOC2012

    def __init__(
        self,
        root: Path | str,
        split: str = "train",
        class_names: Sequence[str] | None = None,
        skip_bad_samples: bool = False,
        download: bool = False,
        mirror: dict[str, str] | None = None,
    ) -> None:
        super().__init__(root, split, skip_bad_samples)
        if download:
            download_archive(self.archive, self.root, mirror)
        self.class_names = list(class_names) if class_names else packaged_list("classes/voc.txt")
        for folder in ("JPEGImages", "SegmentationClass"):
            require_dir(self.root / folder, "VOC folder", VOC_FIX)
        split_file = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if split == "seg11valid" and not split_file.exists():
            self.ids = packaged_list("splits/seg11valid.txt")
        else:
            self.ids = read_split(split_file, VOC_FIX)

    def paths(self, sample_id: str) -> dict[str, Path]:
        return {
            "image": self.root / "JPEGImages" / f"{sample_id}.jpg",
            "mask": self.root / "SegmentationClass" / f"{sample_id}.png",
        }

    def load(self, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        paths = self.paths(sample_id)
        image = read_image(paths["image"], self.exif_orientation)
        mask = read_index_png(paths["mask"])
        check_sizes(image, mask, paths["image"], paths["mask"])
        return image, check_labels(mask, self.num_classes, paths["mask"])
