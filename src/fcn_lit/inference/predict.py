"""Segment images with a trained FCN: palette masks, overlays and optional class probabilities, or
(``format=benchmark``) one file per image in the data set's own label ids, as its benchmark takes them.

``python predict.py ckpt_path=<run>/checkpoints/best.ckpt input=<image, folder or glob> output=<dir>``
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import get_class
from PIL import Image
from rich.progress import Progress
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from fcn_lit.data import colorize
from fcn_lit.data.base import SegmentationDataset
from fcn_lit.data.images import READ_ERRORS, displayed_size, read_rgb
from fcn_lit.data.palette import index_png, save_index_png, voc_palette
from fcn_lit.data.transforms import Normalization, build_normalization
from fcn_lit.data.voc import VOC
from fcn_lit.errors import UserError
from fcn_lit.inference import runtime, speed
from fcn_lit.inference.tiling import TTA, Tiling, mean_pixel, segment
from fcn_lit.models.pretrained import input_preprocessing
from fcn_lit.training.checkpointing import load_checkpoint, local_checkpoint
from fcn_lit.training.module import is_lightning_checkpoint
from fcn_lit.training.tasks import checkpoint_backbone, load_module

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
FORMATS = ("visual", "benchmark")


class SubmissionError(UserError, ValueError):
    """A benchmark submission that cannot be written as asked (a data set that does not describe the
    checkpoint, a folder that already holds other predictions)."""


@dataclass
class Predictor:
    """A net ready to segment RGB images, with what it needs to read and paint them."""

    net: nn.Module
    normalization: Normalization
    class_names: list[str]
    palette: np.ndarray
    pad_value: Tensor  # the training data set's mean pixel, normalised: fills windows past the border
    label_ids: np.ndarray  # class index -> the id the data set's benchmark gives it


def load_predictor(ckpt_path: str | Path, normalization: str | None = None,
                   data: dict[str, Any] | None = None) -> Predictor:
    """A ``Predictor`` from a fcn-lit Lightning checkpoint, a pytorch-fcn (wkentaro) ``.pth`` or a
    Caffe release ``.caffemodel``.

    The data set's facts (colours, benchmark ids, Caffe mean) come from ``data`` (a conf/data
    config: ``data=<name>``), else from the run's (its ``config.yaml``, two levels above
    ``checkpoints/x.ckpt``); a pytorch-fcn model's are VOC's. The input follows the trunk's weights
    (``fcn_lit.models.pretrained.WEIGHTS``) unless that data config overrides it
    (``data.normalization``); ``normalization`` ("imagenet" | "googlenet" | "caffe") overrides both.
    """
    path = local_checkpoint(ckpt_path)
    checkpoint = load_checkpoint(path)
    lightning = is_lightning_checkpoint(checkpoint)
    # data=<name> wins; a release .caffemodel says its data set itself; a train.py run's is in its config.yaml.
    if not data:
        data = checkpoint["caffemodel"]["data"] if "caffemodel" in checkpoint else _run_data_config(path) if lightning else {}
    data = dict(data)
    if list(data.get("modalities", ["color"])) != ["color"]:
        raise ValueError(f"{path} was trained on {data['modalities']}: predict reads RGB images only")
    # pytorch-fcn's models were trained on VOC, with the release's Caffe weights.
    dataset = _run_dataset_class(data) if lightning or data else VOC
    module = load_module(checkpoint, source=path)
    kind = input_preprocessing(checkpoint_backbone(checkpoint), normalization or data.get("normalization"))
    names = list(module.hparams.class_names or [str(i) for i in range(module.hparams.num_classes)])
    net = module.net
    normalize = build_normalization(kind, caffe_means=dataset.caffe_means)
    ids = dataset.benchmark_ids
    if ids is not None and len(ids) != len(names):
        raise SubmissionError(
            f"{path} scores {len(names)} classes but {dataset.__name__} has {len(ids)}: pass data=<the data set "
            "the checkpoint was trained on>, or none to use its run's config.yaml")
    label_ids = np.arange(len(names)) if ids is None else np.array(ids)
    return Predictor(net.eval(), normalize, names, dataset.colours(len(names)), mean_pixel(normalize), label_ids)


def _run_dataset_class(data: dict[str, Any]) -> type[SegmentationDataset]:
    """The data set class the run trained on (its facts: means, colours), or the base class's defaults."""
    target = data.get("dataset", {}).get("_target_")
    return get_class(target) if target else SegmentationDataset


def _run_data_config(ckpt: Path) -> dict[str, Any]:
    """The ``data`` section of the run's config.yaml, or {} when the checkpoint sits elsewhere."""
    from omegaconf import OmegaConf

    for candidate in (ckpt.parent.parent / "config.yaml", ckpt.parent / "config.yaml"):
        if candidate.is_file():
            return OmegaConf.to_container(OmegaConf.load(candidate)).get("data", {})
    return {}


def calibration_inputs(ckpt_path: str | Path, normalization: Normalization, spec: str | None, count: int) -> list[np.ndarray]:
    """``count`` normalised (1, C, H, W) float32 inputs to calibrate int8 quantization on: images of
    ``spec`` (an image, folder or glob), else images spread evenly over the training split of the
    run's data (its config.yaml beside the checkpoint)."""
    if spec:
        paths = find_images(spec)
        images = [read_rgb(paths[i]) for i in _spread(len(paths), count)]
    else:
        from hydra.utils import instantiate

        data = _run_data_config(Path(ckpt_path))
        if not data:
            raise FileNotFoundError(
                f"int8 calibrates on the run's training images, but no config.yaml sits beside {ckpt_path}: "
                "set speed.calibration=<image folder or glob> (a few dozen images like the ones to segment)")
        datamodule = instantiate(data)
        datamodule.prepare_data()
        datamodule.setup("fit")
        images = [datamodule.train_dataset[i][0] for i in _spread(len(datamodule.train_dataset), count)]
    return [normalization(image)[None].numpy() for image in images]


def _spread(n: int, count: int) -> list[int]:
    return sorted({int(i) for i in np.linspace(0, n - 1, min(n, count)).round()})


def find_images(spec: str | Path) -> list[Path]:
    """An image file, every image in a folder (sorted), or a glob pattern's matches."""
    path = Path(spec)
    if path.is_file():
        found = [path]
    elif path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        found = sorted(Path(p) for p in glob.glob(str(spec), recursive=True) if p.lower().endswith(IMAGE_SUFFIXES))
    if not found:
        raise FileNotFoundError(f"input={str(spec)!r} names no image ({', '.join(IMAGE_SUFFIXES)}): give a file, folder or glob")
    stems = [p.stem for p in found]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise ValueError(f"input={str(spec)!r} has images sharing a name {clashes}; outputs would overwrite each other")
    return found


class UnreadableImages(RuntimeError):
    """Raised by ``predict`` once every readable image is segmented: the others, each with the reason."""

    def __init__(self, failures: list[tuple[Path, str]], written: list[Path]) -> None:
        self.failures, self.written = failures, written
        listed = "\n".join(f"  {path}: {reason}" for path, reason in failures)
        super().__init__(f"{len(failures)} image(s) could not be read and have no outputs; "
                         f"re-encode or replace them and predict them again:\n{listed}")


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def size_batches(paths: list[Path], batch_size: int) -> tuple[list[list[int]], dict[int, str]]:
    """Indices batched so that each batch holds images of one displayed size (no padding changes the
    scores), and {index: reason} for the images whose header cannot be read."""
    by_size: dict[tuple[int, int], list[int]] = {}
    unreadable = {}
    for i, p in enumerate(paths):
        try:
            by_size.setdefault(displayed_size(p), []).append(i)
        except READ_ERRORS as error:
            unreadable[i] = _reason(error)
    batches = [group[i : i + batch_size] for group in by_size.values() for i in range(0, len(group), batch_size)]
    return batches, unreadable


class ImageFiles(Dataset):
    """Photos as displayed (EXIF orientation applied), as uint8 RGB arrays and normalised tensors;
    ``(index, None, reason)`` for one that cannot be decoded."""

    def __init__(self, paths: list[Path], normalization: Normalization) -> None:
        self.paths, self.normalization = paths, normalization

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, Tensor | str]:
        try:
            rgb = read_rgb(self.paths[index], "apply")
        except READ_ERRORS as error:
            return index, None, _reason(error)
        return index, rgb, self.normalization(rgb)


def _collate(items: list[tuple[int, np.ndarray | None, Tensor | str]]):
    """(indices, images, batch or None, {index: reason} of the images that failed to decode)."""
    failed = {index: reason for index, rgb, reason in items if rgb is None}
    good = [item for item in items if item[1] is not None]
    if not good:
        return [], [], None, failed
    indices, images, tensors = zip(*good, strict=True)
    return list(indices), list(images), torch.stack(tensors), failed


def save_outputs(out_dir: Path, stem: str, image: np.ndarray, mask: np.ndarray, palette: np.ndarray,
                 probs: np.ndarray | None = None, alpha: float = 0.5) -> list[Path]:
    """``<stem>_mask.png`` (palette PNG whose pixel values are the class indices), ``<stem>_overlay.png``
    (the mask's colours blended over the image), and ``<stem>_probs.npy`` (float16, K x H x W)."""
    mask_path, overlay_path = out_dir / f"{stem}_mask.png", out_dir / f"{stem}_overlay.png"
    save_index_png(mask_path, mask, palette)
    overlay = (1 - alpha) * image.astype(np.float32) + alpha * colorize(mask, palette).astype(np.float32)
    Image.fromarray(np.clip(np.rint(overlay), 0, 255).astype(np.uint8)).save(overlay_path)
    written = [mask_path, overlay_path]
    if probs is not None:
        written.append(out_dir / f"{stem}_probs.npy")
        np.save(written[-1], probs.astype(np.float16))
    return written


def save_benchmark(out_dir: Path, stem: str, mask: np.ndarray, label_ids: np.ndarray, palette: np.ndarray) -> Path:
    """``<stem>.png``: the mask in the benchmark's ids (``label_ids[class]``), a palette PNG with each
    class's colour at its id, or 16-bit greyscale where an id passes 255; written whole or not at all."""
    ids = label_ids[mask]
    if label_ids.max() > 255:
        png = Image.fromarray(ids.astype(np.uint16))
    else:
        colours = voc_palette(256)
        colours[label_ids] = palette
        png = index_png(ids, colours)
    path = out_dir / f"{stem}.png"
    partial = path.with_name(f".{path.name}.partial")
    png.save(partial, format="PNG")
    partial.replace(path)
    return path


def check_submission_folder(out_dir: Path, paths: list[Path]) -> None:
    """Raise unless ``out_dir`` holds no PNG but the ones this submission writes: the benchmarks'
    tools pair every PNG under the folder with a ground truth (Cityscapes' stops at a second one)."""
    ours = {out_dir / f"{p.stem}.png" for p in paths}
    others = sorted(p for p in out_dir.rglob("*.png") if p not in ours) if out_dir.is_dir() else []
    if others:
        raise SubmissionError(
            f"output={out_dir} already holds {len(others)} other PNG files ({', '.join(map(str, others[:3]))}"
            f"{', ...' if len(others) > 3 else ''}): a benchmark's tools would read them as predictions too; "
            "give format=benchmark an empty folder")


def predict(
    ckpt_path: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    format: str = "visual",
    data: dict[str, Any] | None = None,
    batch_size: int = 4,
    num_workers: int = 0,
    probabilities: bool = False,
    alpha: float = 0.5,
    device: str = "auto",
    normalization: str | None = None,
    speed_options: dict[str, Any] | None = None,
    tiling: dict[str, Any] | None = None,
    tta: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Segment every image of ``input`` into ``output``; returns the files written. Images that cannot
    be read are left out and, once all others are written, raised as ``UnreadableImages``. ``tiling``
    ({window, stride}) and ``tta`` ({scales, flip}): see ``fcn_lit.inference.tiling``.

    ``format="visual"``: ``save_outputs``' masks and overlays. ``format="benchmark"``: one
    ``<stem>.png`` per image in the benchmark's ids of the data set (``data``, a conf/data config, else
    the run's): Cityscapes' label ids, ADE20K's 1..150, PASCAL-Context's 459 labels, class indices
    elsewhere (VOC's palette PNGs)."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if format not in FORMATS:
        raise SubmissionError(f"format={format!r} is not one of {', '.join(FORMATS)}")
    if format == "benchmark" and probabilities:
        raise SubmissionError("format=benchmark writes the submission files only: set probabilities=false, "
                              "or predict the probabilities into another folder with format=visual")
    tiles, views = Tiling(**(tiling or {})), TTA(**(tta or {}))
    paths = find_images(input)
    out_dir = Path(output)
    if format == "benchmark":
        check_submission_folder(out_dir, paths)
    predictor = load_predictor(ckpt_path, normalization, data)
    dev = speed.pick_device(device)
    options = speed.SpeedOptions(**(speed_options or {}))
    out_dir.mkdir(parents=True, exist_ok=True)
    batches, unreadable = size_batches(paths, batch_size)
    loader = DataLoader(ImageFiles(paths, predictor.normalization), batch_sampler=batches,
                        num_workers=num_workers, collate_fn=_collate)
    written: list[Path] = []
    run = None
    with Progress(disable=not progress) as bar:
        task = bar.add_task(f"Segmenting {len(paths)} images", total=len(paths))
        bar.advance(task, len(unreadable))
        for indices, images, batch, failed in loader:
            unreadable.update(failed)
            bar.advance(task, len(failed))
            if batch is None:
                continue
            if run is None:  # on the first readable batch, which runtime=auto measures the paths on
                run = runtime.runner(
                    predictor.net, options, dev, sample=lambda: batch,  # noqa: B023 (called at once)
                    calibration=lambda: calibration_inputs(ckpt_path, predictor.normalization, options.calibration,
                                                           options.calibration_images))
            logits = segment(run, batch, tiles, views, predictor.pad_value)
            masks = logits.argmax(1).cpu().numpy()
            probs = logits.softmax(1).cpu().numpy() if probabilities else [None] * len(indices)
            for i, image, mask, p in zip(indices, images, masks, probs, strict=True):
                if format == "benchmark":
                    written.append(save_benchmark(out_dir, paths[i].stem, mask, predictor.label_ids, predictor.palette))
                else:
                    written += save_outputs(out_dir, paths[i].stem, image, mask, predictor.palette, p, alpha)
            bar.advance(task, len(indices))
    if unreadable:
        raise UnreadableImages([(paths[i], unreadable[i]) for i in sorted(unreadable)], written)
    return written
