"""Writers for tiny data sets in the real on-disk layouts (used by the fixtures and tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
