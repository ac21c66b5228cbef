"""Augmentation (albumentations 2.0.8), normalisation and batching of images of different sizes."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import albumentations as A
import numpy as np
import torch
import torchvision.transforms.functional as TF

from fcn_lit.data.base import IGNORE_INDEX, CaffeMean, Target
from fcn_lit.models.pretrained import IMAGENET, INCEPTION_MEAN, INCEPTION_STD, Preprocessing, named_preprocessing

BATCHINGS = ("single", "pad", "crop")
AUGMENTATIONS = ("none", "modern")


@dataclass(frozen=True)
class Normalization:
    """Raw pixels (HxWxC, modalities stacked along channels) -> the float32 (C, H, W) tensor the
    trunk's weights were trained on (``preprocessing``, from ``fcn_lit.models.pretrained.WEIGHTS``).

    Three-channel modalities (colour, HHA) are images and get the weights' preprocessing; colour is
    flipped to BGR where the weights want it. Other modalities (NYUDv2's one-channel depth) arrive
    normalised by the data set and pass through. ``caffe_means``: the data set's mean per modality.
    """

    preprocessing: Preprocessing = IMAGENET
    modalities: tuple[tuple[str, int], ...] = (("color", 3),)
    caffe_means: tuple[tuple[str, CaffeMean], ...] = ()

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        image = np.asarray(image)
        blocks, start = [], 0
        for modality, channels in self.modalities:
            blocks.append(self._block(modality, image[..., start : start + channels]))
            start += channels
        return torch.cat(blocks)

    def _mean(self, modality: str) -> CaffeMean:
        p = self.preprocessing
        means = dict(self.caffe_means)
        if not p.dataset_mean or modality not in means and modality == "color":
            return CaffeMean(p.mean)
        if modality not in means:
            raise ValueError(f"{p.name} input needs the data set's mean of {modality!r}; it declares {sorted(means)}")
        return means[modality]

    def _order(self, modality: str) -> list[int]:
        return [2, 1, 0] if self.preprocessing.bgr and modality == "color" else [0, 1, 2]

    def _block(self, modality: str, pixels: np.ndarray) -> torch.Tensor:
        if pixels.shape[-1] != 3:
            return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32))
        p, pixels = self.preprocessing, pixels[..., self._order(modality)]
        if p.dataset_mean:
            # The release's layers: `in_ = np.array(im, np.float32)[..., ::-1]; in_ -= mean`. std is 1.
            x = self._mean(modality).subtract_from(pixels)
            return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
        # torchvision's ImageClassification: convert_image_dtype (x / 255), then normalize.
        x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).to(torch.float32) / p.divisor
        x = TF.normalize(x, list(p.mean), list(p.std))
        if p.input_transform == "googlenet":  # torchvision GoogLeNet._transform_input, per channel
            x = torch.cat([x[c : c + 1] * (p.std[c] / INCEPTION_STD) + (p.mean[c] - INCEPTION_MEAN) / INCEPTION_STD
                           for c in range(3)])
        return x

    def denormalize(self, image: torch.Tensor) -> np.ndarray:
        """A normalised (C, H, W) tensor back to uint8 HxWx3 RGB (the first modality), for pictures."""
        p = self.preprocessing
        modality, channels = self.modalities[0]
        x = image[:channels].detach().cpu().double().numpy().transpose(1, 2, 0)
        if channels != 3:
            return np.clip(np.rint(np.repeat(x[..., :1], 3, axis=-1)), 0, 255).astype(np.uint8)
        if p.input_transform == "googlenet":
            x = (x - (np.asarray(p.mean) - INCEPTION_MEAN) / INCEPTION_STD) / (np.asarray(p.std) / INCEPTION_STD)
        x = (x * np.asarray(p.std) + np.asarray(self._mean(modality).values)) * p.divisor
        return np.clip(np.rint(x[..., np.argsort(self._order(modality))]), 0, 255).astype(np.uint8)


def build_normalization(
    preprocessing: Preprocessing | str = IMAGENET,
    channels: Mapping[str, int] | None = None,
    caffe_means: Mapping[str, CaffeMean | Sequence[float]] | None = None,
) -> Normalization:
    """The normalisation of `preprocessing` (or its name) for images stacking `channels` ({modality:
    channels}, in order; default RGB), with the data set's `caffe_means` (a plain sequence: float64)."""
    if isinstance(preprocessing, str):
        preprocessing = named_preprocessing(preprocessing)
    means = tuple((m, mean if isinstance(mean, CaffeMean) else CaffeMean(tuple(float(v) for v in mean)))
                  for m, mean in (caffe_means or {}).items())
    return Normalization(preprocessing, tuple((channels or {"color": 3}).items()), means)


def check_settings(augmentation: str, batching: str) -> None:
    """Raise naming the key unless both settings are known."""
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"data.augmentation={augmentation!r} is not one of {AUGMENTATIONS}; pick one")
    if batching not in BATCHINGS:
        raise ValueError(f"data.batching={batching!r} is not one of {BATCHINGS}; pick one")


def build_augmentation(
    train: bool, augmentation: str, batching: str, crop_size: int | Sequence[int], channels: int = 3
) -> A.Compose | None:
    """The albumentations pipeline: none for evaluation or the paper's setting (whole images)."""
    check_settings(augmentation, batching)
    if not train:
        return None
    height, width = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
    modern = augmentation == "modern"
    steps: list[A.BasicTransform] = []
    if modern:
        steps.append(A.RandomScale(scale_limit=(-0.5, 1.0), p=1.0))  # factor 0.5 .. 2.0
    if batching == "crop":
        steps.append(A.RandomCrop(height, width, pad_if_needed=True, fill=0, fill_mask=IGNORE_INDEX))
    if modern:
        steps.append(A.HorizontalFlip(p=0.5))
        if channels == 3:  # colour jitter has no meaning for HHA or depth channels
            steps.append(A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05, p=0.8))
    if not steps:
        return None
    return A.Compose(steps, seed=int(torch.randint(2**31 - 1, ())))


class SegmentationTransform:
    """Augment (image, target) together, normalise the image, return tensors."""

    def __init__(self, augment: A.Compose | None, normalization: Normalization) -> None:
        self.augment = augment
        self.normalization = normalization

    def __call__(self, image: np.ndarray, target: Target) -> tuple[torch.Tensor, torch.Tensor | dict]:
        if self.augment is not None:
            if isinstance(target, dict):
                keys = sorted(target)
                out = self.augment(image=image, masks=[target[k] for k in keys])
                image, target = out["image"], dict(zip(keys, out["masks"], strict=True))
            else:
                out = self.augment(image=image, mask=target)
                image, target = out["image"], out["mask"]
        if isinstance(target, dict):
            return self.normalization(image), {k: _long(v) for k, v in target.items()}
        return self.normalization(image), _long(target)

    def reseed(self, seed: int) -> None:
        if self.augment is not None:
            self.augment.set_random_seed(seed)


def _long(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mask).astype(np.int64))


class TransformedDataset(torch.utils.data.Dataset):
    """A raw data set seen through a transform (the raw one stays reachable as `.dataset`)."""

    def __init__(self, dataset: torch.utils.data.Dataset, transform: SegmentationTransform) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor | dict]:
        image, target = self.dataset[index]
        return self.transform(image, target)


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: reseed the albumentations Compose, numpy and random per worker.

    albumentations 2.0.8 keeps its own generator inside Compose, which every forked worker copies,
    so without this all workers apply the same augmentation sequence.
    """
    info = torch.utils.data.get_worker_info()
    seed = info.seed % 2**32  # torch's base seed + worker id, new every epoch
    np.random.seed(seed)
    random.seed(seed)
    transform = getattr(info.dataset, "transform", None)
    if isinstance(transform, SegmentationTransform):
        transform.reseed(seed)


def _pad_stack(tensors: Sequence[torch.Tensor], value: float) -> torch.Tensor:
    height = max(t.shape[-2] for t in tensors)
    width = max(t.shape[-1] for t in tensors)
    out = tensors[0].new_full((len(tensors), *tensors[0].shape[:-2], height, width), value)
    for i, t in enumerate(tensors):
        out[i, ..., : t.shape[-2], : t.shape[-1]] = t
    return out


def pad_collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor | dict]]) -> tuple[torch.Tensor, torch.Tensor | dict]:
    """Stack samples, padding to the largest height and width: images with 0, masks with 255 (void)."""
    images = _pad_stack([image for image, _ in batch], 0.0)
    first = batch[0][1]
    if isinstance(first, dict):
        return images, {k: _pad_stack([t[k] for _, t in batch], IGNORE_INDEX) for k in first}
    return images, _pad_stack([t for _, t in batch], IGNORE_INDEX)
