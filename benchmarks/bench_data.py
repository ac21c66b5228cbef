"""Data pipeline throughput in one process (num_workers=0: images per second per worker) on
VOC-sized JPEGs in the VOC layout, through SegmentationDataModule's train loader.

The images are the real VOC samples under shared/realdata when present (cycled to 32), else
generated 500x375 pictures; each is decoded from JPEG every time, as in training.

Run: PYTHONPATH=src python benchmarks/bench_data.py   (part of `make bench`)
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fcn_lit.data import VOC, SegmentationDataModule
from fcn_lit.data.palette import save_index_png

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "voc" / "VOCdevkit" / "VOC2012"
SETTINGS = {"full": dict(images=32, epochs=3), "smoke": dict(images=8, epochs=1)}


def write_voc(root: Path, count: int) -> Path:
    """``count`` samples in the VOC layout: JPEGImages/*.jpg, SegmentationClass/*.png, train.txt."""
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    real = sorted(p for p in (REALDATA / "JPEGImages").glob("*.jpg")
                  if (REALDATA / "SegmentationClass" / f"{p.stem}.png").is_file()) if REALDATA.is_dir() else []
    rng = np.random.default_rng(0)
    ids = [f"2011_{i:06d}" for i in range(count)]
    for i, sample in enumerate(ids):
        if real:
            source = real[i % len(real)]
            shutil.copy(source, root / "JPEGImages" / f"{sample}.jpg")
            shutil.copy(REALDATA / "SegmentationClass" / f"{source.stem}.png", root / "SegmentationClass" / f"{sample}.png")
            continue
        yy, xx = np.mgrid[:375, :500]
        image = np.stack([(xx + 40 * i) % 256, (yy * 2) % 256, rng.integers(0, 256, (375, 500))], -1)
        Image.fromarray(image.astype(np.uint8)).save(root / "JPEGImages" / f"{sample}.jpg", quality=90)
        save_index_png(root / "SegmentationClass" / f"{sample}.png", (xx // 100 + yy // 75) % 21)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids) + "\n")
    return root


def images_per_second(root: Path, augmentation: str, epochs: int) -> float:
    dm = SegmentationDataModule(VOC, root, train_split="train", val_split="train", batch_size=8, num_workers=0,
                                batching="crop", crop_size=320, augmentation=augmentation, pin_memory=False)
    dm.setup("fit")
    loader = dm.train_dataloader()
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        for image, _target in loader:
            seen += image.shape[0]
    return seen / (time.perf_counter() - start)


def main(smoke: bool = False) -> dict[str, float]:
    s = SETTINGS["smoke" if smoke else "full"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as inside a DataLoader worker process, which torch limits to one thread
    try:
        return _measure(s)
    finally:
        torch.set_num_threads(threads)


def _measure(s: dict[str, int]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = write_voc(Path(tmp) / "VOC2012", s["images"])
        source = "real VOC JPEGs" if REALDATA.is_dir() else "generated 500x375 JPEGs"
        print(f"Data pipeline, one process with one torch thread (= one DataLoader worker), {s['images']} {source}, crop batching 320, batch 8")
        figures = {}
        for augmentation in ("modern", "none"):
            rate = images_per_second(root, augmentation, s["epochs"])
            figures[augmentation] = rate
            print(f"  augmentation={augmentation:<7} {rate:7.1f} images/s per worker"
                  + ("  (target >= 150)" if augmentation == "modern" else ""), flush=True)
    return figures


if __name__ == "__main__":
    import sys

    main(smoke="--smoke" in sys.argv)
