"""See a data set as the net sees it: a grid of training samples after the training transforms
(augmentation, cropping, padding), each mask overlaid in the data set's palette, a class legend, and
void (255, not scored) drawn as black and white stripes.

    python -m fcn_lit.data.browse data=voc data.root=/data/VOCdevkit/VOC2012 [--samples 16] [--out browse.png]

Any override of ``python train.py`` applies (``data.augmentation=modern``, ``data.batching=crop``,
``model/backbone=...`` for its input normalisation).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fcn_lit.data.base import IGNORE_INDEX
from fcn_lit.data.check import CONF_DIR
from fcn_lit.models import PRIMARY_HEAD

STRIPE = 4  # width in pixels of the void stripes


def overlay(image: np.ndarray, mask: np.ndarray, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``image`` (HxWx3 uint8) with ``mask``'s class colours blended in at ``alpha``; void pixels
    (255) replaced by diagonal black and white stripes, which no class colour looks like."""
    colours = np.asarray(palette, np.float32)[np.minimum(mask, len(palette) - 1)]
    out = (1 - alpha) * image.astype(np.float32) + alpha * colours
    rows, cols = np.indices(mask.shape)
    stripes = np.where(((rows + cols) // STRIPE) % 2 == 0, 255.0, 0.0)[..., None]
    out = np.where((mask == IGNORE_INDEX)[..., None], stripes, out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def training_samples(datamodule, count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``count`` samples of the training loader (shuffled, augmented, batched as for
    training; again from the start, freshly augmented, when the split is smaller), as (uint8
    HxWx3 image, int mask of the primary head)."""
    torch.manual_seed(seed)  # the augmentation's seed
    datamodule.setup("fit")
    samples: list[tuple[np.ndarray, np.ndarray]] = []
    while len(samples) < count:
        before = len(samples)
        for images, targets in datamodule.train_dataloader():
            masks = targets[PRIMARY_HEAD] if isinstance(targets, dict) else targets
            samples += [(datamodule.denormalize(image), mask.numpy()) for image, mask in zip(images, masks, strict=True)]
            if len(samples) >= count:
                break
        if len(samples) == before:
            raise ValueError(f"the training split {datamodule.splits['train']!r} yields no samples")
    return samples[:count]


def legend(masks: Sequence[np.ndarray], class_names: Sequence[str]) -> tuple[list[int], bool]:
    """The classes present in ``masks`` (sorted indices) and whether any pixel is void."""
    present = np.unique(np.concatenate([np.unique(m) for m in masks]))
    return [int(c) for c in present if c < len(class_names)], bool((present == IGNORE_INDEX).any())


def save_grid(path: str | Path, samples: list[tuple[np.ndarray, np.ndarray]], class_names: Sequence[str],
              palette: np.ndarray, title: str = "", alpha: float = 0.5, columns: int = 4) -> Path:
    """Write the samples' overlays in a grid with a legend of the classes they show (and void)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    columns = min(columns, len(samples))
    rows = math.ceil(len(samples) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns + 2.5, 3 * rows + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (i, (image, mask)) in zip(axes.ravel(), enumerate(samples)):
        ax.imshow(overlay(image, mask, palette, alpha), interpolation="nearest")
        ax.set_title(f"#{i}  {mask.shape[1]}x{mask.shape[0]}", fontsize=8)
    classes, void = legend([m for _, m in samples], class_names)
    handles = [Patch(facecolor=np.asarray(palette[c]) / 255, edgecolor="black", label=f"{c} {class_names[c]}")
               for c in classes]
    if void:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="////", label=f"{IGNORE_INDEX} void (not scored)"))
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 2.4 / (3 * columns + 2.5), 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m fcn_lit.data.browse", description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="train.py overrides, e.g. data=voc data.root=...")
    parser.add_argument("--samples", type=int, default=16, help="how many training samples (default 16)")
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the mask colours")
    parser.add_argument("--seed", type=int, default=0, help="shuffling and augmentation seed")
    parser.add_argument("--out", default="browse.png", help="the PNG to write (default browse.png)")
    args = parser.parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    if args.samples < 1 or args.columns < 1 or not 0 <= args.alpha <= 1:
        parser.error(f"--samples {args.samples} and --columns {args.columns} must be >= 1, --alpha {args.alpha} in 0..1")

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from fcn_lit.models.pretrained import input_preprocessing

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(args.overrides))
    normalization = input_preprocessing(cfg.model.backbone, cfg.data.get("normalization")).name
    datamodule = instantiate(cfg.data, normalization=normalization, num_workers=0)
    datamodule.prepare_data()
    samples = training_samples(datamodule, args.samples, args.seed)
    d = cfg.data
    title = (f"{datamodule.name} {datamodule.splits['train']}: {len(samples)} training samples as the net sees them "
             f"(augmentation {d.augmentation}, batching {d.batching}, input {normalization})")
    path = save_grid(args.out, samples, datamodule.class_names, datamodule.palette, title, args.alpha, args.columns)
    print(f"Wrote {path}")
    return path


if __name__ == "__main__":
    main()
