"""The embedded data set: procedurally drawn shapes in the exact PASCAL VOC layout.

Generated once, deterministically from a seed, then reused, so the quickstart runs the same loader
as real VOC. Classes differ by shape, colour and texture; borders carry VOC's 255 "void" band, and
objects are small enough that a stride-32 head visibly blurs their borders while stride 8 does not.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from rich.progress import track
from scipy import ndimage

from fcn_lit.data.base import read_split
from fcn_lit.data.palette import save_index_png
from fcn_lit.data.voc import VOC

CLASS_NAMES = ("background", "disk", "box", "triangle", "ring", "ellipse")
# Hue (degrees) and texture per object class; the colours of box and triangle overlap on purpose so
# that shape and texture, not colour alone, separate them.
_STYLE = {
    "disk": (40, "smooth"),
    "box": (215, "checker"),
    "triangle": (235, "stripes"),
    "ring": (120, "smooth"),
    "ellipse": (300, "dots"),
}
_MARKER = "synthetic.json"


def generate_synthetic(
    root: str | Path, *, seed: int = 0, num_train: int = 600, num_val: int = 100, size: int = 80
) -> Path:
    """Write the data set under ``root`` once and return ``root``.

    An existing set made with the same parameters is reused; one made with other parameters is an
    error rather than a silent mix. Writing goes to a sibling folder renamed at the end, so an
    interrupted run never leaves a half-written set behind.
    """
    root = Path(root)
    params = {"seed": seed, "num_train": num_train, "num_val": num_val, "size": size,
              "classes": list(CLASS_NAMES)}
    marker = root / _MARKER
    if marker.exists():
        found = json.loads(marker.read_text())
        if found != params:
            raise FileExistsError(
                f"{root} holds a synthetic data set made with {found}, not {params}: "
                f"delete {root} or point data.root elsewhere")
        return root
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(
            f"{root} exists and is not a synthetic data set (no {_MARKER}): "
            "point data.root at an empty or new folder")

    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (tmp / sub).mkdir(parents=True)
    splits = {"train": [f"train_{i:05d}" for i in range(num_train)],
              "val": [f"val_{i:05d}" for i in range(num_val)]}
    jobs = [(split, i, name) for split, names in splits.items() for i, name in enumerate(names)]
    for split, i, name in track(jobs, description=f"Generating synthetic data in {root}"):
        # One generator per image: the set does not depend on how many images come before.
        rng = np.random.default_rng([seed, 0 if split == "train" else 1, i])
        image, label = draw_sample(rng, size)
        Image.fromarray(image).save(tmp / "JPEGImages" / f"{name}.jpg", quality=95)
        save_index_png(tmp / "SegmentationClass" / f"{name}.png", label)
    for split, names in splits.items():
        (tmp / "ImageSets/Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
    (tmp / "class_names.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    (tmp / _MARKER).write_text(json.dumps(params))
    if root.exists():
        root.rmdir()
    tmp.rename(root)
    return root


def draw_sample(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (uint8 HxWx3 RGB image, uint8 HxW label with 255 borders) pair."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    image = _background(rng, size, yy, xx)
    label = np.zeros((size, size), np.uint8)
    border = np.zeros((size, size), bool)
    for _ in range(rng.integers(1, 4)):
        cls = int(rng.integers(1, len(CLASS_NAMES)))
        name = CLASS_NAMES[cls]
        mask = _shape(name, rng, size, yy, xx)
        if mask.sum() < 12:
            continue
        hue, texture = _STYLE[name]
        image[mask] = _paint(rng, hue, texture, yy, xx)[mask]
        label[mask] = cls
        interior = ndimage.binary_erosion(mask)
        border = (border & ~interior) | (mask & ~interior)
    label[border] = 255
    noise = rng.normal(0, 6, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8), label


def _shape(name: str, rng: np.random.Generator, size: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    r = rng.uniform(0.12, 0.26) * size
    cy, cx = rng.uniform(r * 0.6, size - r * 0.6, 2)
    dy, dx = yy - cy, xx - cx
    if name == "disk":
        return dy**2 + dx**2 <= r**2
    if name == "ring":
        d = np.sqrt(dy**2 + dx**2)
        return (d <= r) & (d >= 0.55 * r)
    if name == "ellipse":
        t = rng.uniform(0, np.pi)
        u, v = dx * np.cos(t) + dy * np.sin(t), -dx * np.sin(t) + dy * np.cos(t)
        return (u / r) ** 2 + (v / (0.5 * r)) ** 2 <= 1
    if name == "box":
        h = r * rng.uniform(0.7, 1.0, 2)
        return (np.abs(dy) <= h[0]) & (np.abs(dx) <= h[1])
    # triangle: apex up, base down
    return (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)


def _paint(rng: np.random.Generator, hue: float, texture: str, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    base = _hsv_to_rgb(hue + rng.uniform(-12, 12), rng.uniform(0.6, 0.9), rng.uniform(0.65, 0.95))
    shade = np.ones_like(yy)
    period = rng.uniform(5, 7)
    if texture == "checker":
        shade = np.where(((yy // (period / 2)) + (xx // (period / 2))) % 2 == 0, 1.0, 0.55)
    elif texture == "stripes":
        shade = np.where((yy // (period / 2)) % 2 == 0, 1.0, 0.55)
    elif texture == "dots":
        shade = np.where((np.sin(yy * 2 * np.pi / period) * np.sin(xx * 2 * np.pi / period)) > 0.5, 0.5, 1.0)
    return base[None, None, :] * shade[..., None]


def _background(rng: np.random.Generator, size: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Low-saturation clutter: a colour gradient, soft blobs and faint oriented stripes."""
    c0, c1 = rng.uniform(60, 200, 3), rng.uniform(60, 200, 3)
    grey = rng.uniform(0.5, 0.9)
    c0, c1 = grey * c0.mean() + (1 - grey) * c0, grey * c1.mean() + (1 - grey) * c1
    t = (xx * np.cos(rng.uniform(0, np.pi)) + yy * np.sin(rng.uniform(0, np.pi))) / (2 * size) + 0.5
    image = c0 * (1 - t[..., None]) + c1 * t[..., None]
    blobs = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), size / 10)
    image += (blobs / (blobs.std() + 1e-6) * 12)[..., None]
    angle, period = rng.uniform(0, np.pi), rng.uniform(3, 9)
    stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    return image + 10 * stripes[..., None]


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    h = (h % 360) / 60
    c = v * s
    x = c * (1 - abs(h % 2 - 1))
    rgb = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(h) % 6]
    return (np.array(rgb) + (v - c)) * 255


class Synthetic(VOC):
    """The embedded set as a data set: generated under ``root`` on first use (``generator``: the
    keyword arguments of ``generate_synthetic``), then read by the VOC loader, its classes from
    the set's class_names.txt."""

    splits = ("train", "val")
    caffe_means: dict[str, tuple[float, ...]] = {}  # none of its own: the Caffe weights' mean
    archive = None

    def __init__(
        self, root: str | Path, split: str = "train", skip_bad_samples: bool = False, generator: dict | None = None
    ) -> None:
        generate_synthetic(root, **(generator or {}))
        names = read_split(Path(root) / "class_names.txt", "delete the folder to generate the set again")
        super().__init__(root, split, class_names=names, skip_bad_samples=skip_bad_samples)
