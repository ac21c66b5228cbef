"""SBD (Hariharan et al.): dataset/img/{id}.jpg and dataset/cls/{id}.mat (GTcls.Segmentation)."""

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
    read_mat,
    read_split,
    require_dir,
)
from fcn_lit.data.download import Archive, download_archive
from fcn_lit.models.pretrained import CAFFE

SBD_FIX = (
    "Point the SBD root (data.root, or data.train_dataset.root for voc_sbd) at SBD's dataset/ folder holding img/, cls/, "
    "train.txt and val.txt (e.g. <data_dir>/sbd/dataset), or set data.download=true to fetch "
    "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz."
)


SBD_BENCHMARK = Archive(
    "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz",
    "82b4d87ceb2ed10f6038a1cba92111cb",
    "benchmark_RELEASE/dataset",
)


class SBD(SegmentationDataset):
    """Semantic Boundaries Dataset, the VOC classes; FCN trains on its `train` split (8498 images).
    `download=True` fetches benchmark.tgz (or `mirror`: {url, md5}) when the root is empty."""

    splits = ("train", "val")
    caffe_means = {"color": CaffeMean(CAFFE.mean)}  # as VOC: the ILSVRC mean
    archive = SBD_BENCHMARK

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
        for folder in ("img", "cls"):
            require_dir(self.root / folder, "SBD folder", SBD_FIX)
        self.ids = read_split(self.root / f"{split}.txt", SBD_FIX)

    def paths(self, sample_id: str) -> dict[str, Path]:
        return {"image": self.root / "img" / f"{sample_id}.jpg", "mask": self.root / "cls" / f"{sample_id}.mat"}

    def load(self, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        paths = self.paths(sample_id)
        image = read_image(paths["image"], self.exif_orientation)
        mask = np.asarray(read_mat(paths["mask"], "GTcls").Segmentation)
        check_sizes(image, mask, paths["image"], paths["mask"])
        return image, check_labels(mask, self.num_classes, paths["mask"])
