"""What every data set shares: split files, image and mask reading, and sample checks."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import torch
from PIL import Image

from fcn_lit.data.download import Archive
from fcn_lit.data.images import READ_ERRORS, read_rgb
from fcn_lit.data.palette import voc_palette
from fcn_lit.errors import BadSampleError, DataNotFoundError, SplitFileError

log = logging.getLogger(__name__)

IGNORE_INDEX = 255

Target = np.ndarray | dict[str, np.ndarray]


def packaged_list(name: str) -> list[str]:
    """A list shipped with the package (class names, split ids), one entry a line."""
    text = resources.files("fcn_lit.data").joinpath(name).read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_split(path: Path, fix: str = "") -> list[str]:
    """Ids listed in a split file, one a line; missing or empty files raise with the fix."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"split file {path} does not exist. {fix}".strip())
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise SplitFileError(f"split file {path} is empty: list one sample id per line. {fix}".strip())
    return ids


def require_dir(path: Path, what: str, fix: str) -> Path:
    """Raise a DataNotFoundError naming `path` unless it is a folder."""
    path = Path(path)
    if not path.is_dir():
        raise DataNotFoundError(f"{what} {path} does not exist. {fix}")
    return path


def read_image(path: Path, exif_orientation: str = "refuse") -> np.ndarray:
    """An image file as uint8 HxWx3 RGB (greyscale, palette, CMYK and 16/32-bit images converted);
    a non-identity EXIF orientation is refused, applied or ignored (``data.exif_orientation``)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"image {path} does not exist: restore it or remove its id from the split file")
    try:
        return read_rgb(path, exif_orientation)
    except BadSampleError:
        raise
    except READ_ERRORS as err:
        raise BadSampleError(
            path, f"cannot read the image ({err}); re-download or re-encode it, or set data.skip_bad_samples=true"
        ) from err


def lossy_twin(path: Path) -> str:
    """For a missing .png mask, a note naming the JPEG of the same stem beside it, if there is one."""
    path = Path(path)
    twins = [path.with_suffix(s) for s in (".jpg", ".jpeg", ".JPG", ".JPEG")] if path.suffix == ".png" else []
    twin = next((t for t in twins if t.is_file()), None)
    if twin is None:
        return ""
    return (f" ({twin} is there, but masks must be PNGs: JPEG compression changes the class indices along "
            "every edge; export the mask as PNG from the original, not by converting the JPEG)")


def read_index_png(path: Path) -> np.ndarray:
    """A palette (P) or greyscale (L) PNG whose pixel values are class indices, as HxW uint8."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(
            f"mask {path} does not exist{lossy_twin(path)}: every image of the split needs one; "
            "add it, remove the id from the split file, or set data.skip_bad_samples=true"
        )
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                raise BadSampleError(
                    path, "mask is a JPEG file under a .png name: JPEG compression changes the class indices "
                    "along every edge; export the mask as PNG from the original",
                )
            if im.mode not in ("P", "L"):
                raise BadSampleError(
                    path,
                    f"mask mode is {im.mode!r}, expected a palette (P) or greyscale (L) PNG of class indices; "
                    "convert colour masks with a colour -> class map (SegmentationFolder(mask_format='color'))",
                )
            return np.asarray(im)
    except OSError as err:
        raise BadSampleError(path, f"cannot read the mask ({err}); re-create it") from err


def read_mat(path: Path, key: str) -> Any:
    """One variable of a MATLAB .mat file (structs as attribute objects)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(
            f"label file {path} does not exist: restore it, remove the id from the split file, "
            "or set data.skip_bad_samples=true"
        )
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as err:  # scipy raises several unrelated types on corrupt files
        raise BadSampleError(path, f"cannot read the .mat file ({err}); re-download it") from err
    if key not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise BadSampleError(path, f"has no variable {key!r} (found {found}); is this the right data set?")
    return mat[key]


def check_labels(mask: np.ndarray, num_classes: int, path: object) -> np.ndarray:
    """Return the mask as int64 after checking every value is a class index or 255."""
    mask = np.asarray(mask).astype(np.int64)
    bad = (mask >= num_classes) & (mask != IGNORE_INDEX) | (mask < 0)
    if bad.any():
        values = np.unique(mask[bad])[:10].tolist()
        raise BadSampleError(
            path,
            f"label values {values} are outside the {num_classes} classes (0..{num_classes - 1}) and "
            f"{IGNORE_INDEX} (void); fix the mask, set data.num_classes / class names to match, "
            "or set data.skip_bad_samples=true",
        )
    return mask


def check_sizes(image: np.ndarray, mask: np.ndarray, image_path: object, mask_path: object) -> None:
    """Raise unless the image and its mask have the same height and width."""
    if image.shape[:2] != mask.shape[:2]:
        raise BadSampleError(
            mask_path,
            f"mask size {mask.shape[1]}x{mask.shape[0]} differs from image {image_path} size "
            f"{image.shape[1]}x{image.shape[0]} (WxH); re-create the mask at the image size",
        )


@dataclass(frozen=True)
class CaffeMean:
    """A release data layer's mean (BGR for colour) and the dtype the layer subtracts it in:
    voc_layers.py takes a tuple, so ``np.array(mean)`` is float64 and the float32 image minus it is
    computed in float64 and rounded once; siftflow_, nyud_ and pascalcontext_layers.py build
    ``np.array(..., dtype=np.float32)`` and subtract in float32 (one ulp apart: 3.8e-6 at 100)."""

    values: tuple[float, ...]
    dtype: str = "float64"

    def subtract_from(self, pixels: np.ndarray) -> np.ndarray:
        """``in_ = np.array(im, dtype=np.float32); in_ -= mean`` as the layer computes it (in the
        mean's dtype; uint8 pixels are exact in both), as float32."""
        return (pixels.astype(self.dtype) - np.array(self.values, self.dtype)).astype(np.float32)


class SegmentationDataset(torch.utils.data.Dataset):
    """Base of the data sets: `ds[i] -> (image uint8 HxWxC, target int64 HxW or dict)`.

    Subclasses set `ids`, `class_names` and implement `paths(id)` and `load(id)`, reading photos with
    `read_image(path, self.exif_orientation)` ("refuse", "apply" or "ignore": data.exif_orientation).
    Their constructor takes `root`, `split` and `skip_bad_samples`, then their own settings. With
    `skip_bad_samples`, unusable samples are logged, recorded in `skipped` and replaced by the next
    usable one instead of raising.

    Each data set declares its facts (as mmsegmentation's METAINFO); the data module reads them and
    never knows a data set by name: `class_names`, `palette`, `ignore_index`, `heads` (None: one head
    of `num_classes`; SIFT Flow: semantic and geometric), `excluded_classes` (per head, class indices
    left out of scoring), `channels` (per input modality, in stacking order), `caffe_means` (the
    release's data-layer mean per modality, BGR for colour, with the dtype its layer subtracts it in;
    none: the Caffe weights' own), `splits` (the split names it ships), `archive` (what
    data.download=true fetches; None: no download), `benchmark_ids` (the id its benchmark's ground
    truth gives each class, in class order: what predict.py format=benchmark writes; None: the class
    indices themselves) and `categories` (the category of each class, scored beside the classes as
    Cityscapes' evaluator does; None: none).
    """

    class_names: Sequence[str] = ()
    exif_orientation: str = "refuse"
    ignore_index: int = IGNORE_INDEX
    caffe_means: Mapping[str, CaffeMean] = {}
    splits: tuple[str, ...] = ()
    archive: Archive | None = None
    benchmark_ids: tuple[int, ...] | None = None
    categories: tuple[str, ...] | None = None

    def __init__(self, root: Path | str, split: str, skip_bad_samples: bool = False) -> None:
        self.root = Path(root)
        self.split = split
        self.skip_bad_samples = skip_bad_samples
        self.ids: list[str] = []
        self.skipped: list[tuple[str, str]] = []

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def palette(self) -> np.ndarray:
        """(num_classes, 3) uint8 colours of the classes."""
        return self.colours(self.num_classes)

    @classmethod
    def colours(cls, num_classes: int) -> np.ndarray:
        """The data set's colours for `num_classes` classes: VOC's colour map unless it has its own."""
        return voc_palette(num_classes)

    @property
    def heads(self) -> dict[str, int] | None:
        return None

    @property
    def excluded_classes(self) -> dict[str, list[int]] | None:
        return None

    @property
    def channels(self) -> dict[str, int]:
        return {"color": 3}

    @property
    def in_channels(self) -> int:
        return sum(self.channels.values())

    def __len__(self) -> int:
        return len(self.ids)

    def paths(self, sample_id: str) -> dict[str, Path]:
        """The files sample `sample_id` reads, by role ("image", "mask", ...)."""
        raise NotImplementedError

    def load(self, sample_id: str) -> tuple[np.ndarray, Target]:
        """Read and check one sample."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[np.ndarray, Target]:
        for attempt in range(len(self.ids)):
            sample_id = self.ids[(index + attempt) % len(self.ids)]
            try:
                return self.load(sample_id)
            except (BadSampleError, DataNotFoundError) as err:
                if not self.skip_bad_samples:
                    raise
                self._skip(sample_id, str(err))
        raise BadSampleError(self.root, f"every sample of split {self.split!r} is unusable (see the log)")

    def _skip(self, sample_id: str, reason: str) -> None:
        self.skipped.append((sample_id, reason))
        log.warning("skipping sample %s (%d skipped so far): %s", sample_id, len(self.skipped), reason)

    def drop_missing(self) -> None:
        """Check every listed sample's files exist; drop them (skip mode) or raise naming the first."""
        listings: dict[Path, set[str]] = {}
        kept, missing = [], []
        for sample_id in self.ids:
            absent = []
            for path in self.paths(sample_id).values():
                if path.parent not in listings:
                    listings[path.parent] = {p.name for p in path.parent.iterdir()} if path.parent.is_dir() else set()
                if path.name not in listings[path.parent]:
                    absent.append(path)
            (missing if absent else kept).append((sample_id, absent))
        if not missing:
            return
        sample_id, absent = missing[0]
        message = (
            f"{len(missing)} of {len(self.ids)} samples of split {self.split!r} lack files, first {sample_id}: "
            f"{', '.join(f'{p}{lossy_twin(p)}' for p in absent)} missing; restore them, remove the ids from the split file, "
            "or set data.skip_bad_samples=true"
        )
        if not self.skip_bad_samples:
            raise DataNotFoundError(message)
        for sample_id, absent in missing:
            self.skipped.append((sample_id, f"missing {', '.join(map(str, absent))}"))
        log.warning("skipped %d samples: %s", len(missing), [m[0] for m in missing])
        self.ids = [sample_id for sample_id, _ in kept]
