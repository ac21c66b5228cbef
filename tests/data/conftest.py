"""Tiny data sets written on disk in the real layouts, and the path to the shared real samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"


def voc_colours() -> list[int]:
    """The VOC colour map written out independently of fcn_lit (flat list for PIL.putpalette)."""
    flat = []
    for index in range(256):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        flat += [r, g, b]
    return flat


def random_mask(rng: np.random.Generator, height: int, width: int, num_classes: int) -> np.ndarray:
    """Blocky class indices with a void (255) band, like VOC's object outlines."""
    mask = rng.integers(0, num_classes, size=(height // 4 + 1, width // 4 + 1)).repeat(4, 0).repeat(4, 1)
    mask = mask[:height, :width].astype(np.uint8)
    mask[:, width // 2] = 255
    return mask


def write_palette_png(path: Path, mask: np.ndarray) -> None:
    image = Image.fromarray(mask, mode="P")
    image.putpalette(voc_colours())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_jpeg(path: Path, rng: np.random.Generator, height: int, width: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)).save(path, quality=95)


@pytest.fixture
def make_voc(tmp_path):
    """make_voc(splits={"train": n, "val": m}, sizes=[(h, w), ...]) -> (root, {id: mask})."""

    def make(
        splits: dict[str, int] | None = None, sizes=((20, 28), (24, 20), (16, 16)), num_classes: int = 21, seed: int = 0
    ) -> tuple[Path, dict[str, np.ndarray]]:
        rng = np.random.default_rng(seed)
        root = tmp_path / "VOCdevkit" / "VOC2012"
        masks = {}
        (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        count = 0
        for split, n in (splits or {"train": 3, "val": 2}).items():
            ids = []
            for _ in range(n):
                sample_id = f"2011_{count:06d}"
                height, width = sizes[count % len(sizes)]
                write_jpeg(root / "JPEGImages" / f"{sample_id}.jpg", rng, height, width)
                masks[sample_id] = random_mask(rng, height, width, num_classes)
                write_palette_png(root / "SegmentationClass" / f"{sample_id}.png", masks[sample_id])
                ids.append(sample_id)
                count += 1
            (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
        return root, masks

    return make


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real samples not found at {REALDATA}")
    return REALDATA
