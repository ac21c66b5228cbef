"""One LightningDataModule for every data set, built by Hydra from conf/data/*.yaml."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from fcn_lit.data import transforms as T
from fcn_lit.data.base import IGNORE_INDEX, SegmentationDataset, packaged_list
from fcn_lit.data.errors import DataNotFoundError, SplitFileError
from fcn_lit.data.images import ORIENTATION_CHOICES
from fcn_lit.data.palette import voc_palette

NAMES = ("voc", "sbd", "voc_sbd", "nyud", "siftflow", "context", "folder", "synthetic")
DEFAULT_CLASSES = {
    "voc": "classes/voc.txt",
    "sbd": "classes/voc.txt",
    "voc_sbd": "classes/voc.txt",
    "nyud": "classes/nyud.txt",
    "siftflow": "classes/siftflow_semantic.txt",
    "context": "classes/context59.txt",
}

# What to set instead of an empty split file, and what it does.
NO_SPLIT = {
    "val": "data.val_split=null to train without validation",
    "test": "data.test_split=null to test on the validation split",
}


class SegmentationDataModule(L.LightningDataModule):
    """Data sets, transforms and loaders for one `conf/data/<name>.yaml`.

    `__init__` only stores the settings; `prepare_data()` downloads or generates and checks the
    roots; `setup()` reads the split files. Raw data sets: `train_dataset`, `val_dataset`,
    `test_dataset`; batches are `(float32 (N, C, H, W), int64 (N, H, W) or a dict of such)`.
    """

    def __init__(
        self,
        name: str,
        root: str | Path,
        train_split: str | None = "train",
        val_split: str | None = "val",
        test_split: str | None = None,
        batch_size: int = 1,
        num_workers: int = 0,
        batching: str = "single",
        crop_size: int | Sequence[int] = 320,
        augmentation: str = "none",
        normalization: str | None = None,
        download: bool = False,
        skip_bad_samples: bool = False,
        exif_orientation: str = "refuse",
        class_names: Sequence[str] | str | None = None,
        sbd_root: str | Path | None = None,
        modalities: Sequence[str] = ("color",),
        images_dir: str | Path | None = None,
        masks_dir: str | Path | None = None,
        mask_format: str = "index",
        color_map: dict[str, Any] | None = None,
        generator: dict[str, Any] | None = None,
        archives: dict[str, dict[str, str]] | None = None,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__()
        if name not in NAMES:
            raise ValueError(f"data.name={name!r} is not one of {NAMES}; pick one of the conf/data/*.yaml files")
        T.check_settings(augmentation, batching)
        if exif_orientation not in ORIENTATION_CHOICES:
            raise ValueError(f"data.exif_orientation={exif_orientation!r} is not one of {ORIENTATION_CHOICES}")
        if batching == "single" and batch_size != 1:
            raise ValueError(
                f"data.batch_size={batch_size} with data.batching=single: whole images differ in size; "
                "set data.batching=pad (pad to the largest, 255 in masks) or crop, or data.batch_size=1"
            )
        self.name = name
        self.root = Path(root)
        self.splits = {"train": train_split, "val": val_split, "test": test_split or val_split}
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.batching = batching
        self.crop_size = crop_size
        self.augmentation = augmentation
        self.download = download
        self.skip_bad_samples = skip_bad_samples
        self.exif_orientation = exif_orientation
        self.sbd_root = Path(sbd_root) if sbd_root else None
        self.modalities = tuple(modalities) if name == "nyud" else ("color",)
        self.images_dir, self.masks_dir = images_dir, masks_dir
        self.mask_format, self.color_map = mask_format, color_map
        self.generator = dict(generator or {})
        self.archives = archives
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self._class_names = class_names
        self.ignore_index = IGNORE_INDEX
        self.in_channels = sum(T.CHANNELS[m] for m in self.modalities)
        self.task_heads = {"semantic": 33, "geometric": 3} if name == "siftflow" else None
        self.normalization = T.build_normalization(normalization or "imagenet", self.modalities,
                                                   T.CAFFE_MEANS.get(name, {}))
        self.train_dataset: SegmentationDataset | None = None
        self.val_dataset: SegmentationDataset | None = None
        self.test_dataset: SegmentationDataset | None = None

    # --- what the model needs to know -------------------------------------------------------

    @property
    def class_names(self) -> list[str]:
        names = self._class_names
        if isinstance(names, str | Path):
            return _read_names(Path(names))
        if names:
            return list(names)
        if self.name == "synthetic":
            return _read_names(self.root / "class_names.txt", fix="call prepare_data() to generate the set")
        if self.name == "folder":
            raise ValueError(
                "data.class_names is not set for data=folder: give a list of names or a file with one per line"
            )
        return packaged_list(DEFAULT_CLASSES[self.name])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def palette(self) -> np.ndarray:
        return voc_palette(self.num_classes)

    @property
    def excluded_classes(self) -> dict[str, list[int]] | None:
        """Classes the paper leaves out of scoring: SIFT Flow's cow, desert and moon (absent from test)."""
        if self.name != "siftflow":
            return None
        from fcn_lit.data.siftflow import ABSENT_FROM_TEST

        return {"semantic": [self.class_names.index(c) for c in ABSENT_FROM_TEST]}

    def denormalize(self, image: torch.Tensor) -> np.ndarray:
        """A normalised (C, H, W) image back to uint8 HxWx3 RGB, for pictures."""
        return self.normalization.denormalize(image)

    # --- data sets ----------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Generate (synthetic) or download (data.download=true), then check roots and split files."""
        if self.name == "synthetic":
            from fcn_lit.data.synthetic import generate_synthetic

            generate_synthetic(self.root, **self.generator)
        elif self.download:
            from fcn_lit.data.download import download_dataset

            download_dataset(self.name, self.root, self.sbd_root, self.archives)
        problems = []
        for stage in ("train", "val", "test"):
            if self.splits[stage]:
                try:
                    self.build_dataset(stage)
                except DataNotFoundError as err:
                    problems += [str(err)] if str(err) not in problems else []
        if problems:
            raise DataNotFoundError("\n".join(problems))

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage, ("train", "val", "test")) if stage else ("train", "val", "test"):
            if self.splits[split] and getattr(self, f"{split}_dataset") is None:
                dataset = self.build_dataset(split)
                dataset.drop_missing()
                setattr(self, f"{split}_dataset", dataset)

    def build_dataset(self, stage: str) -> SegmentationDataset:
        """The raw data set of `stage` ("train", "val" or "test"), without transforms."""
        try:
            dataset = self._new_dataset(stage)
        except SplitFileError as err:
            if stage == "val" or (stage == "test" and self.splits["test"] != self.splits["val"]):
                raise SplitFileError(f"{err} Or set {NO_SPLIT[stage]}.") from err
            raise
        dataset.exif_orientation = self.exif_orientation
        return dataset

    def _new_dataset(self, stage: str) -> SegmentationDataset:
        split = self.splits[stage]
        skip = self.skip_bad_samples
        if self.name in ("voc", "synthetic") or (self.name == "voc_sbd" and stage != "train"):
            from fcn_lit.data.voc import VOC

            return VOC(self.root, split, class_names=self.class_names, skip_bad_samples=skip)
        if self.name in ("sbd", "voc_sbd"):
            from fcn_lit.data.sbd import SBD

            root = self.sbd_root if self.name == "voc_sbd" else self.root
            if root is None:
                raise DataNotFoundError("data.sbd_root is not set: point it at SBD's dataset/ folder")
            return SBD(root, split, class_names=self.class_names, skip_bad_samples=skip)
        if self.name == "nyud":
            from fcn_lit.data.nyud import NYUDv2

            return NYUDv2(self.root, split, modalities=self.modalities, skip_bad_samples=skip)
        if self.name == "siftflow":
            from fcn_lit.data.siftflow import SIFTFlow

            return SIFTFlow(self.root, split, skip_bad_samples=skip)
        if self.name == "context":
            from fcn_lit.data.context import PASCALContext

            return PASCALContext(self.root, split, skip_bad_samples=skip)
        from fcn_lit.data.folder import SegmentationFolder

        return SegmentationFolder(
            self.images_dir or self.root / "images",
            self.masks_dir or self.root / "masks",
            split=split,
            class_names=self.class_names,
            mask_format=self.mask_format,
            color_map=self.color_map,
            skip_bad_samples=skip,
        )

    # --- loaders ------------------------------------------------------------------------------

    def _loader(self, split: str, train: bool) -> DataLoader:
        dataset = getattr(self, f"{split}_dataset")
        if dataset is None:
            self.setup()
            dataset = getattr(self, f"{split}_dataset")
        if dataset is None:
            raise ValueError(f"data.{split}_split is not set: name the split file to use")
        augment = T.build_augmentation(train, self.augmentation, self.batching, self.crop_size, self.in_channels)
        transform = T.SegmentationTransform(augment, self.normalization)
        batch_size = 1 if self.batching == "single" else self.batch_size
        dataset = T.TransformedDataset(dataset, transform)
        sampler = _training_sampler(dataset) if train else _evaluation_sampler(dataset)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            # Iterators draw their worker seed from here, not from the global RNG that a resumed run restores.
            generator=torch.Generator().manual_seed(torch.initial_seed()) if train else None,
            drop_last=train and len(dataset) > batch_size,
            num_workers=self.num_workers,
            collate_fn=T.pad_collate,
            worker_init_fn=T.seed_worker,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader | list:
        # data.val_split=null: no loader, and Lightning trains without validation.
        return self._loader("val", train=False) if self.splits["val"] else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)


def _training_sampler(dataset: Dataset) -> DistributedSampler | None:
    """One process: a shuffle seeded by (seed, epoch), which Lightning advances with set_epoch, so a run
    resumed from a checkpoint sees the order of an uninterrupted one. Under DDP Lightning injects its
    own DistributedSampler, seeded the same way."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return None
    seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
    return DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)


def _evaluation_sampler(dataset: Dataset) -> UnrepeatedDistributedSampler | None:
    """Under DDP, each evaluation sample on exactly one process: Lightning's DistributedSampler
    pads the split with duplicates, which split-level scores would count twice."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    return UnrepeatedDistributedSampler(dataset, shuffle=False)


def _read_names(path: Path, fix: str = "write one class name per line, in index order") -> list[str]:
    if not path.is_file():
        raise DataNotFoundError(f"class names file {path} does not exist: {fix}")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DataNotFoundError(f"class names file {path} is empty: {fix}")
    return names
