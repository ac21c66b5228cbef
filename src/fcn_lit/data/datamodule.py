"""One LightningDataModule for every data set, built by Hydra from conf/data/*.yaml."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from fcn_lit.data import transforms as T
from fcn_lit.data.base import SegmentationDataset
from fcn_lit.data.images import ORIENTATION_CHOICES
from fcn_lit.errors import DataNotFoundError, SplitFileError

log = logging.getLogger(__name__)

# What to set instead of an empty split file, and what it does.
NO_SPLIT = {
    "val": "data.val_split=null to train without validation",
    "test": "data.test_split=null to test on the validation split",
}


class SegmentationDataModule(L.LightningDataModule):
    """Data sets, transforms and loaders for one `conf/data/<name>.yaml`.

    `dataset` builds the data set of a split: a data set class, or a partial of one (Hydra's
    `_target_` with `_partial_: true`), called as `dataset(root=root, split=..., skip_bad_samples=...,
    **settings)`, `settings` being the data set's own (`data.modalities`, `data.generator`, ...);
    `train_dataset` (a partial holding its own root) replaces it for the training split (VOC+SBD
    trains on SBD). What the model needs to know (classes, heads, channels, palette, means) is read
    from the data set (`SegmentationDataset`'s facts), never from its name; `name` only labels runs.

    `__init__` only stores the settings; `prepare_data()` downloads or generates and checks the
    roots; `setup()` reads the split files. Raw data sets: `train_dataset`, `val_dataset`,
    `test_dataset`; batches are `(float32 (N, C, H, W), int64 (N, H, W) or a dict of such)`.
    `normalization`: what the trunk's weights expect (`fcn_lit.models.pretrained.PREPROCESSINGS`;
    train, eval and predict pass the model's), None: torchvision's ImageNet convention.
    """

    def __init__(
        self,
        dataset: Callable[..., SegmentationDataset],
        root: str | Path | None = None,
        *,
        train_dataset: Callable[..., SegmentationDataset] | None = None,
        name: str | None = None,
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
        pin_memory: bool | None = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        T.check_settings(augmentation, batching)
        if exif_orientation not in ORIENTATION_CHOICES:
            raise ValueError(f"data.exif_orientation={exif_orientation!r} is not one of {ORIENTATION_CHOICES}")
        if batching == "single" and batch_size != 1:
            raise ValueError(
                f"data.batch_size={batch_size} with data.batching=single: whole images differ in size; "
                "set data.batching=pad (pad to the largest, 255 in masks) or crop, or data.batch_size=1"
            )
        _check_settings(dataset, settings)
        for factory in (dataset, train_dataset):
            if download and factory is not None and _dataset_class(factory).archive is None:
                raise ValueError(
                    f"data.download=true: {_dataset_class(factory).__name__} declares no archive to fetch; download "
                    "it by hand (see the comment in conf/data/<name>.yaml) and set data.download=false"
                )
        self.factories = {"train": train_dataset or dataset, "val": dataset, "test": dataset}
        self.name = name or _dataset_class(dataset).__name__
        self.root = Path(root) if root is not None else None
        self.settings = settings
        self.splits = {"train": train_split, "val": val_split, "test": test_split or val_split}
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.batching = batching
        self.crop_size = crop_size
        self.augmentation = augmentation
        self.preprocessing = normalization or "imagenet"
        self.download = download
        self.skip_bad_samples = skip_bad_samples
        self.exif_orientation = exif_orientation
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.train_dataset: SegmentationDataset | None = None
        self.val_dataset: SegmentationDataset | None = None
        self.test_dataset: SegmentationDataset | None = None
        self._described: SegmentationDataset | None = None

    # --- what the model needs to know: the data set's facts -----------------------------------

    @property
    def info(self) -> SegmentationDataset:
        """The data set whose facts describe the task: the scored (validation) split's, else the first set."""
        if self._described is None:
            stage = next((s for s in ("val", "test", "train") if self.splits[s]), None)
            if stage is None:
                raise ValueError("data.train_split, val_split and test_split are all null: name a split file")
            self._described = getattr(self, f"{stage}_dataset") or self.build_dataset(stage)
        return self._described

    @property
    def class_names(self) -> list[str]:
        return list(self.info.class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def palette(self) -> np.ndarray:
        return self.info.palette

    @property
    def ignore_index(self) -> int:
        return self.info.ignore_index

    @property
    def task_heads(self) -> dict[str, int] | None:
        return self.info.heads

    @property
    def excluded_classes(self) -> dict[str, list[int]] | None:
        return self.info.excluded_classes

    @property
    def categories(self) -> tuple[str, ...] | None:
        return self.info.categories

    @property
    def in_channels(self) -> int:
        return self.info.in_channels

    @cached_property
    def normalization(self) -> T.Normalization:
        return T.build_normalization(self.preprocessing, self.info.channels, self.info.caffe_means)

    def denormalize(self, image: torch.Tensor) -> np.ndarray:
        """A normalised (C, H, W) image back to uint8 HxWx3 RGB, for pictures."""
        return self.normalization.denormalize(image)

    # --- data sets ----------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Build every split's data set (which downloads or generates, where the data set does), and
        report every missing root or split file at once."""
        problems = []
        for stage in ("val", "test", "train"):
            if self.splits[stage]:
                try:
                    self.build_dataset(stage)
                except DataNotFoundError as err:
                    problems += [str(err)] if str(err) not in problems else []
        if problems:
            raise DataNotFoundError("\n".join(problems))

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
        for split in wanted.get(stage, ("train", "val", "test")) if stage else ("train", "val", "test"):
            if self.splits[split] and getattr(self, f"{split}_dataset") is None:
                dataset = self.build_dataset(split)
                dataset.drop_missing()
                setattr(self, f"{split}_dataset", dataset)

    def build_dataset(self, stage: str) -> SegmentationDataset:
        """The raw data set of `stage` ("train", "val" or "test"), without transforms."""
        factory = self.factories[stage]
        options: dict[str, Any] = {"split": self.splits[stage], "skip_bad_samples": self.skip_bad_samples}
        if factory is self.factories["val"]:
            options |= self.settings | ({"root": self.root} if self.root is not None else {})
        if self.download:
            options["download"] = True
        try:
            dataset = factory(**options)
        except SplitFileError as err:
            if stage == "val" or (stage == "test" and self.splits["test"] != self.splits["val"]):
                raise SplitFileError(f"{err} Or set {NO_SPLIT[stage]}.") from err
            raise
        dataset.exif_orientation = self.exif_orientation
        return dataset

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
        return (ResumableLoader if train else DataLoader)(
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


class ResumableSampler(DistributedSampler):
    """A DistributedSampler that can start one epoch's order after its first ``skip`` samples."""

    _skip: tuple[int, int] | None = None  # (epoch, samples)

    def skip(self, epoch: int, samples: int) -> None:
        self._skip = (epoch, samples)

    def __iter__(self):
        indices = list(super().__iter__())
        skip, self._skip = self._skip, None
        return iter(indices[skip[1]:] if skip and skip[0] == self.epoch else indices)


class ResumableLoader(DataLoader):
    """The training loader. Its state (the epoch and the batches drawn from it) goes into every
    checkpoint (Lightning saves a loader's state_dict); a fit resumed from a checkpoint written
    mid-epoch (preemption, Ctrl-C, validation every N steps) starts that epoch's order after the
    batches it already trained on, as the uninterrupted run goes on. Under DDP, Lightning's own
    sampler starts the epoch over (said in the log)."""

    _drawn = 0

    def __iter__(self):
        self._drawn = 0
        for batch in super().__iter__():
            self._drawn += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(getattr(self.sampler, "epoch", 0)), "drawn": self._drawn}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if isinstance(self.sampler, ResumableSampler):
            self.sampler.skip(state["epoch"], state["drawn"] * self.batch_size)
        elif state["drawn"]:
            log.warning("Resuming mid-epoch under DDP: epoch %d's order starts over (%d batches were done)",
                        state["epoch"], state["drawn"])


def _training_sampler(dataset: Dataset) -> DistributedSampler | None:
    """One process: a shuffle seeded by (seed, epoch), which Lightning advances with set_epoch, so a run
    resumed from a checkpoint sees the order of an uninterrupted one. Under DDP Lightning injects its
    own DistributedSampler, seeded the same way."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return None
    seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
    return ResumableSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)


def _evaluation_sampler(dataset: Dataset) -> UnrepeatedDistributedSampler | None:
    """Under DDP, each evaluation sample on exactly one process: Lightning's DistributedSampler
    pads the split with duplicates, which split-level scores would count twice."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    return UnrepeatedDistributedSampler(dataset, shuffle=False)


def _dataset_class(factory: Callable[..., SegmentationDataset]) -> type:
    return getattr(factory, "func", factory)


def _check_settings(factory: Callable[..., SegmentationDataset], settings: dict[str, Any]) -> None:
    """Raise naming the key when a setting is not one of the data set's own."""
    cls = _dataset_class(factory)
    accepted = set(inspect.signature(cls).parameters) - {"root", "split", "skip_bad_samples", "download"}
    unknown = sorted(set(settings) - accepted)
    if unknown:
        raise ValueError(f"data.{unknown[0]} is not a setting of {cls.__name__} (its settings: "
                         f"{sorted(accepted) or 'none'}): remove it or pick the data set it belongs to")
