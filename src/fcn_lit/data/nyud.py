"""NYUDv2 in Gupta et al.'s format, as FCN reads it: colour, HHA and depth, 40 classes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

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
from fcn_lit.errors import BadSampleError, DataNotFoundError

MEAN_LOG_DEPTH = CaffeMean((7.844,), "float32")  # mean of log(depth in mm) over the training set (nyud_layers.py)
MODALITY_DIRS = {"color": "images", "hha": "hha", "depth": "depth"}
MODALITY_CHANNELS = {"color": 3, "hha": 3, "depth": 1}
NYUD_FIX = (
    "Point data.root at the folder holding data/images/, data/hha/, data/depth/, segmentation/ and the split "
    "lists (train.txt, val.txt, test.txt); get it from http://dl.caffe.berkeleyvision.org/nyud.tar.gz "
    "(FCN's format of Gupta et al.'s http://people.eecs.berkeley.edu/~sgupta/cvpr13/data.tgz)."
)


def read_depth(path: Path) -> np.ndarray:
    """A uint16 depth PNG in millimetres as float32 log(depth) - 7.844, HxWx1."""
    if not path.is_file():
        raise DataNotFoundError(f"depth image {path} does not exist: restore it or drop 'depth' from data.modalities")
    try:
        with Image.open(path) as im:
            depth = np.asarray(im, dtype=np.float32)
    except OSError as err:
        raise BadSampleError(path, f"cannot read the depth image ({err}); re-download it") from err
    # Gupta's depth is filled in; clamp to 1 mm so a stray 0 cannot become -inf. As nyud_layers.py:
    # float32 log, then `d -= self.mean_logd`, a float32 array: subtracted in float32.
    log_depth = np.log(np.maximum(depth, np.float32(1.0)))
    return MEAN_LOG_DEPTH.subtract_from(log_depth)[..., None]


class NYUDv2(SegmentationDataset):
    """NYUDv2 40-class segmentation; labels 0 (void) .. 40 become 255, 0..39.

    `modalities` stacks inputs along channels in the given order: "color" (RGB), "hha" (3) and
    "depth" (1). The image is uint8 unless depth is included, then float32 (depth as log - mean).
    `split="trainval"` is train + val when there is no trainval.txt.
    """

    splits = ("train", "val", "test", "trainval")
    # nyud_layers.py: colour BGR, HHA in its own order (depth's log mean is MEAN_LOG_DEPTH, applied on reading).
    caffe_means = {"color": CaffeMean((116.190, 97.203, 92.318), "float32"),
                   "hha": CaffeMean((132.431, 94.076, 118.477), "float32")}

    @property
    def channels(self) -> dict[str, int]:
        return {m: MODALITY_CHANNELS[m] for m in self.modalities}

    def __init__(
        self,
        root: Path | str,
        split: str = "trainval",
        modalities: Sequence[str] = ("color",),
        skip_bad_samples: bool = False,
    ) -> None:
        super().__init__(root, split, skip_bad_samples)
        unknown = [m for m in modalities if m not in MODALITY_DIRS]
        if unknown or not modalities:
            raise ValueError(f"data.modalities={list(modalities)} must be a non-empty list of {list(MODALITY_DIRS)}")
        self.modalities = tuple(modalities)
        self.class_names = packaged_list("classes/nyud.txt")
        for modality in self.modalities:
            require_dir(self.root / "data" / MODALITY_DIRS[modality], "NYUDv2 folder", NYUD_FIX)
        require_dir(self.root / "segmentation", "NYUDv2 folder", NYUD_FIX)
        if split == "trainval" and not (self.root / "trainval.txt").exists():
            self.ids = read_split(self.root / "train.txt", NYUD_FIX) + read_split(self.root / "val.txt", NYUD_FIX)
        else:
            self.ids = read_split(self.root / f"{split}.txt", NYUD_FIX)

    def paths(self, sample_id: str) -> dict[str, Path]:
        paths = {m: self.root / "data" / MODALITY_DIRS[m] / f"img_{sample_id}.png" for m in self.modalities}
        return paths | {"mask": self.root / "segmentation" / f"img_{sample_id}.mat"}

    def load(self, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        paths = self.paths(sample_id)
        channels = [read_depth(paths[m]) if m == "depth" else read_image(paths[m], self.exif_orientation) for m in self.modalities]
        for modality, array in zip(self.modalities[1:], channels[1:], strict=True):
            check_sizes(channels[0], array, paths[self.modalities[0]], paths[modality])
        dtype = np.float32 if "depth" in self.modalities else np.uint8
        image = np.concatenate([c.astype(dtype) for c in channels], axis=-1)
        mask = np.asarray(read_mat(paths["mask"], "segmentation")).astype(np.int64) - 1
        mask[mask == -1] = 255  # void 0 -> 255, as the reference's uint8 subtraction
        check_sizes(image, mask, paths[self.modalities[0]], paths["mask"])
        return image, check_labels(mask, self.num_classes, paths["mask"])
