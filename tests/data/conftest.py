"""Fixtures: tiny data sets written on disk in the real layouts, and the shared real samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ondisk import REALDATA, random_mask, write_jpeg, write_palette_png


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
