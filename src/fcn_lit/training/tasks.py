"""The task layer that train, eval, predict and export share: building the data module, the trainer
and the model from a config or a checkpoint, and reporting scores and pictures. Each entry keeps
only its own steps; the root scripts (train.py, eval.py, ...) dispatch to them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig
from rich.console import Console

from fcn_lit.data.base import packaged_list
from fcn_lit.data.datamodule import SegmentationDataModule
from fcn_lit.experiments.pictures import save_comparison
from fcn_lit.experiments.scores import METRIC_NAMES, named_scores, per_class_table, percent, print_scores, score_or_none
from fcn_lit.metrics import category_iu
from fcn_lit.models import PRIMARY_HEAD, import_torchfcn
from fcn_lit.models.pretrained import input_preprocessing
from fcn_lit.training.module import FCNModule, is_lightning_checkpoint

log = logging.getLogger(__name__)

# pytorch-fcn's VGG16 FCNs carry the Caffe release's weights.
TORCHFCN_BACKBONE = {"name": "vgg16", "weights": "caffe", "pretrained": False}


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a callbacks/logger group (a dict of configs)."""
    return [instantiate(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def build_datamodule(data: DictConfig, backbone: Mapping[str, Any], **overrides: Any) -> SegmentationDataModule:
    """``cfg.data``'s data module, fed the input the trunk's weights (``backbone``: the model's
    ``backbone`` config or a checkpoint's) expect; ``data.normalization`` overrides it, logged.
    ``overrides``: settings for this use (eval: ``train_split=None``)."""
    return instantiate(data, normalization=input_preprocessing(backbone, data.get("normalization")).name, **overrides)


# Callbacks that raise without a logger: left out under `logger=none`.
NEED_A_LOGGER = (LearningRateMonitor,)


def build_trainer(cfg: DictConfig, logger: list[Any] | bool = False) -> L.Trainer:
    """``cfg.trainer`` with ``cfg.callbacks`` (plugins such as the atomic checkpoint IO come with
    the trainer config); without a logger, less the callbacks that need one (said in the log).
    The trainer's `auto` settings are resolved first (fcn_lit.training.devices.resolve_trainer)."""
    callbacks = instantiate_all(cfg.get("callbacks"))
    if not logger:
        skipped = [type(c).__name__ for c in callbacks if isinstance(c, NEED_A_LOGGER)]
        if skipped:
            log.info("No logger: left out %s, which logs through one.", ", ".join(skipped))
        callbacks = [c for c in callbacks if not isinstance(c, NEED_A_LOGGER)]
    return instantiate(cfg.trainer, callbacks=callbacks, logger=logger)


def last_checkpoint(cfg: DictConfig) -> Path | None:
    """The file ``ckpt_path=last`` names: what ``callbacks.last_checkpoint`` writes, if it exists."""
    callback = (cfg.get("callbacks") or {}).get("last_checkpoint")
    if callback is None:
        return None
    path = Path(callback.dirpath) / f"{callback.filename}.ckpt"
    return path if path.exists() else None


def load_module(checkpoint: dict[str, Any], *, at_once: bool | None = None, class_names: list[str] | None = None,
                source: object = "the checkpoint", **facts: Any) -> FCNModule:
    """The one checkpoint loader (eval, predict, export): an FCNModule rebuilt from this project's
    checkpoint (its plain hyperparameters), or from a pytorch-fcn state dict (a VGG16 FCN in Caffe
    alignment with the release's weights; ``class_names`` and ``facts`` such as ``excluded_classes``
    describe what it scores, by default VOC's 21 classes, else numbered ones). A release
    ``.caffemodel`` (read into a checkpoint by ``load_checkpoint``) scores what ``class_names`` and
    ``facts`` say, by default its release data set's classes."""
    if is_lightning_checkpoint(checkpoint):
        if "caffemodel" in checkpoint:
            return FCNModule.from_saved(checkpoint, **({"class_names": list(class_names)} if class_names else {}), **facts)
        return FCNModule.from_saved(checkpoint)
    if "conv1_1.weight" not in checkpoint.get("model_state_dict", checkpoint):
        raise ValueError(f"{source} is neither a fcn-lit checkpoint (hyper_parameters, state_dict) nor a pytorch-fcn "
                         "state dict: give a .ckpt written by train.py, a pytorch-fcn .pth or a release .caffemodel")
    net = import_torchfcn(checkpoint, at_once=at_once)
    classes = net.head.score_fr.out_channels
    if not class_names:
        class_names = packaged_list("classes/voc.txt") if classes == 21 else [str(i) for i in range(classes)]
    module = FCNModule(
        net={"stride": net.head.stride, "alignment": "caffe", "at_once": net.head.at_once},
        backbone={**TORCHFCN_BACKBONE, "width": net.trunk.channels[32] / 4096},
        loss={},
        optimizer={"lr": 0.0},
        scheduler={},
        num_classes=classes,
        class_names=list(class_names),
        **facts,
    )
    module.net.load_state_dict(net.state_dict())
    return module


def checkpoint_backbone(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The trunk config of a checkpoint (what its weights expect as input follows from it)."""
    return dict(checkpoint["hyper_parameters"]["backbone"]) if is_lightning_checkpoint(checkpoint) else TORCHFCN_BACKBONE


def report_scores(head_scores: dict[str, dict[str, Any]], class_names: list[str], stage: str, console: Console,
                  categories: Sequence[str] | None = None) -> dict[str, Any]:
    """Print the primary head's tables; return scores keyed by class name, other heads nested.
    ``categories`` (the data set's category of each class): their IoU too, as Cityscapes scores them."""
    primary = head_scores[PRIMARY_HEAD]
    log.info("%s: %s", stage, ", ".join(f"{name} {percent(primary[key])}" for key, name in METRIC_NAMES.items()))
    print_scores(primary, class_names, f"{stage} ({PRIMARY_HEAD})" if len(head_scores) > 1 else stage, console)
    out = named_scores(primary, class_names)
    if categories:
        pooled = category_iu(torch.tensor(primary["confusion_matrix"]), categories)
        per_category = pooled["per_category_iu"]
        title = f"{stage}: per-category IU (%), mean {percent(pooled['mean_category_iu'])}"
        console.print(per_class_table(list(per_category.values()), list(per_category), title, column="category"))
        out["mean_category_iu"] = score_or_none(pooled["mean_category_iu"])
        out["per_category_iu"] = {name: score_or_none(iu) for name, iu in per_category.items()}
    for head, scores in head_scores.items():
        if head != PRIMARY_HEAD:
            console.print(f"{stage} {head}: pixel accuracy {100 * scores['pixel_acc']:.2f}")
            out[head] = {k: score_or_none(v) for k, v in scores.items() if k != "per_class_iu"}
    return out


@torch.inference_mode()
def save_pictures(module: FCNModule, datamodule: Any, path: Path, count: int) -> Path:
    """Image | ground truth | prediction for the first test samples."""
    module.eval()
    rows = []
    for image, target in datamodule.test_dataloader():
        outputs = module(image.to(module.device))
        if isinstance(outputs, dict):
            outputs, target = outputs[PRIMARY_HEAD], target[PRIMARY_HEAD]
        for i in range(image.shape[0]):
            rows.append((datamodule.denormalize(image[i]), target[i].numpy(), outputs[i].argmax(0).cpu().numpy()))
            if len(rows) == count:
                return save_comparison(path, rows, datamodule.palette, scale=2)
    return save_comparison(path, rows, datamodule.palette, scale=2)
