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


def write_mat(path: Path, **variables) -> None:
    import scipy.io

    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, variables)


def write_sbd(root: Path, splits: dict[str, int], seed: int = 0, size=(18, 22)) -> dict[str, np.ndarray]:
    """SBD's dataset/ layout: img/{id}.jpg, cls/{id}.mat holding the GTcls struct."""
    rng = np.random.default_rng(seed)
    masks, count = {}, 0
    for split, n in splits.items():
        ids = []
        for _ in range(n):
            sample_id = f"2008_{count:06d}"
            write_jpeg(root / "img" / f"{sample_id}.jpg", rng, *size)
            mask = random_mask(rng, *size, 21)
            mask[mask == 255] = 0  # SBD has no void pixels
            gtcls = {"Segmentation": mask, "Boundaries": np.zeros(1), "CategoriesPresent": np.unique(mask)}
            write_mat(root / "cls" / f"{sample_id}.mat", GTcls=gtcls)
            masks[sample_id] = mask
            ids.append(sample_id)
            count += 1
        (root / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return masks


SCENES = "spatial_envelope_256x256_static_8outdoorcategories"


def write_siftflow(root: Path, splits: dict[str, list[str]], seed: int = 0, size: int = 16) -> dict[str, tuple]:
    """SIFT Flow layout; returns {id: (semantic S, geometric S)} as written (0 / -1 = void)."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, ids in splits.items():
        for sample_id in ids:
            write_jpeg(root / "Images" / SCENES / f"{sample_id}.jpg", rng, size, size)
            semantic = rng.integers(0, 34, size=(size, size)).astype(np.uint16)
            geometric = rng.choice(np.array([-1, 1, 2, 3], dtype=np.int16), size=(size, size))
            write_mat(root / "SemanticLabels" / SCENES / f"{sample_id}.mat", S=semantic)
            write_mat(root / "GeoLabels" / SCENES / f"{sample_id}.mat", S=geometric)
            written[sample_id] = (semantic, geometric)
        (root / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return written


def write_nyud(root: Path, splits: dict[str, list[str]], seed: int = 0, size=(12, 16)) -> dict[str, dict]:
    """NYUDv2 in FCN's layout: data/{images,hha,depth}/img_{id}.png, segmentation/img_{id}.mat."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, ids in splits.items():
        for sample_id in ids:
            color = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            hha = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            depth = rng.integers(500, 9000, size=size).astype(np.uint16)
            labels = rng.integers(0, 41, size=size).astype(np.uint8)
            for folder, array in (("images", color), ("hha", hha), ("depth", depth)):
                (root / "data" / folder).mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(root / "data" / folder / f"img_{sample_id}.png")
            write_mat(root / "segmentation" / f"img_{sample_id}.mat", segmentation=labels)
            written[sample_id] = {"color": color, "hha": hha, "depth": depth, "labels": labels}
        (root / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return written


def write_context(root: Path, label_map: np.ndarray, sample_id: str = "2008_000002", split: str = "train") -> None:
    """PASCAL-Context layout: VOC2010/JPEGImages/{id}.jpg, VOC2010/ImageSets/Main/{split}.txt, trainval/{id}.mat."""
    voc = root / "VOC2010"
    write_jpeg(voc / "JPEGImages" / f"{sample_id}.jpg", np.random.default_rng(0), *label_map.shape)
    (voc / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (voc / "ImageSets" / "Main" / f"{split}.txt").write_text(f"{sample_id}\n")
    write_mat(root / "trainval" / f"{sample_id}.mat", LabelMap=label_map)
