"""The PASCAL VOC colour map (VOCdevkit's labelcolormap)."""

import numpy as np


def voc_palette(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 colours: class k's colour spreads the bits of k over R, G and B."""
    k = np.arange(n)
    palette = np.zeros((n, 3), np.uint8)
    for bit in range(8):
        for channel in range(3):
            palette[:, channel] |= (((k >> (3 * bit + channel)) & 1) << (7 - bit)).astype(np.uint8)
    return palette
