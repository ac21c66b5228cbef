"""Pictures of predictions beside the ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fcn_lit.data.palette import colorize, voc_palette


def save_comparison(
    path: str | Path,
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    palette: np.ndarray | None = None,
    scale: int = 1,
) -> Path:
    """Write one PNG, one row per sample: image | ground truth | prediction."""
    palette = voc_palette() if palette is None else np.asarray(palette, np.uint8)
    gap = 4
    lines = []
    for image, target, pred in rows:
        tiles = [image[..., :3], colorize(target, palette), colorize(pred, palette)]
        spacer = np.full((image.shape[0], gap, 3), 255, np.uint8)
        lines.append(np.concatenate([tiles[0], spacer, tiles[1], spacer, tiles[2]], axis=1))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, gap), (0, width - line.shape[1]), (0, 0)), constant_values=255)
             for line in lines]
    picture = Image.fromarray(np.concatenate(lines, axis=0))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path
