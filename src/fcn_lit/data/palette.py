"""Class colours: the PASCAL VOC colour map, and masks painted with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def voc_palette(num_colors: int = 256) -> np.ndarray:
    """The VOC colour map as a (num_colors, 3) uint8 array (bit-interleaved class index)."""
    palette = np.zeros((num_colors, 3), dtype=np.uint8)
    for index in range(num_colors):
        c, r, g, b = index, 0, 0, 0
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette[index] = (r, g, b)
    return palette


def colorize(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Paint an HxW index mask as HxWx3 uint8; indices past the palette (255 = void) use VOC's."""
    lut = voc_palette(256)
    lut[: min(len(palette), 255)] = palette[:255]
    return lut[np.asarray(mask).astype(np.int64).clip(0, 255)]


def index_png(mask: np.ndarray, palette: np.ndarray | None = None) -> Image.Image:
    """An HxW index mask as VOC writes labels: a palette image whose pixel values are the class
    indices, coloured by ``palette`` (VOC's colours for the indices it does not cover, 255 included)."""
    lut = voc_palette(256)
    if palette is not None:
        lut[: len(palette)] = palette[:256]
    png = Image.fromarray(np.asarray(mask).astype(np.uint8), mode="P")
    png.putpalette(lut.ravel().tolist())
    return png


def save_index_png(path: str | Path, mask: np.ndarray, palette: np.ndarray | None = None) -> Path:
    """Write ``index_png(mask, palette)`` to ``path``."""
    index_png(mask, palette).save(path)
    return Path(path)
