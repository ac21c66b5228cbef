"""Evaluation entry: a checkpoint and a data config in; the paper's four metrics, the per-class IU
table and metrics.json out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from torch import nn

from fcn_lit.config_check import check_config
from fcn_lit.experiments.scores import comparison_table, write_json
from fcn_lit.inference import runtime, speed
from fcn_lit.inference.predict import calibration_inputs
from fcn_lit.inference.tiling import TTA, Segmenter, Tiling, mean_pixel
from fcn_lit.training.checkpointing import load_checkpoint, local_checkpoint
from fcn_lit.training.devices import resolve_trainer
from fcn_lit.training.module import FCNModule, is_lightning_checkpoint
from fcn_lit.training.tasks import build_datamodule, build_trainer, checkpoint_backbone, load_module, report_scores


def check_heads(module: FCNModule, datamodule: Any, source: object = "the checkpoint") -> None:
    """Raise unless the checkpoint scores the heads and classes of the data set."""
    if module.heads != dict(datamodule.task_heads or {"semantic": datamodule.num_classes}):
        raise ValueError(
            f"{source} scores {module.heads} classes but data={datamodule.name} has "
            f"{datamodule.task_heads or datamodule.num_classes}: pass the data config the model was trained on"
        )


def on_speed_path(module: FCNModule, options: speed.SpeedOptions, calibration: Callable[[], list[np.ndarray]]) -> nn.Module:
    """The module's net run on the path ``options`` ask for (``speed.*``; auto by default).
    Multi-head nets run in PyTorch fp32: the exported graphs and runtime=auto keep the semantic head only."""
    if len(module.heads) == 1:
        return runtime.RunnerModule(module.net, options, calibration)
    if options.runtime not in ("auto", "torch") or options.precision not in ("auto", "fp32"):
        raise speed.SpeedError(f"speed.runtime={options.runtime} speed.precision={options.precision}: this checkpoint scores "
                               f"several heads {list(module.heads)}, which run in PyTorch fp32 only: leave speed.* at auto")
    return module.net


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` on ``cfg.data``'s test split; returns the scores (also metrics.json).
    With ``cfg.tiling.window`` every pass runs window by window; with ``cfg.tta`` a second pass
    scores the test-time augmented logits (``test_tta``) beside the single-scale ones (``test``)."""
    check_config(cfg)
    tiling = Tiling(**OmegaConf.to_container(cfg.get("tiling") or {}))
    tta = TTA(**OmegaConf.to_container(cfg.get("tta") or {}))
    path = local_checkpoint(cfg.ckpt_path)
    checkpoint = load_checkpoint(path)
    console = Console()
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # The input the checkpoint's trunk weights expect (pytorch-fcn's: Caffe's).
    # Only the test split is read: data=voc_sbd needs VOC's seg11valid, not SBD (its train split).
    datamodule = build_datamodule(cfg.data, checkpoint_backbone(checkpoint), train_split=None)
    if not is_lightning_checkpoint(checkpoint):
        console.print(f"pytorch-fcn checkpoint: data.normalization={datamodule.preprocessing} (its weights came from Caffe)")
    elif "caffemodel" in checkpoint:
        console.print(f"Caffe release net {checkpoint['caffemodel']['release']}: data.normalization={datamodule.preprocessing}")
    datamodule.prepare_data()
    module = load_module(checkpoint, at_once=cfg.get("at_once"), class_names=datamodule.class_names, source=path,
                         ignore_index=datamodule.ignore_index, excluded_classes=datamodule.excluded_classes)
    check_heads(module, datamodule, path)
    resolve_trainer(cfg.trainer, module)
    trainer = build_trainer(cfg)
    net, pad_value = module.net, mean_pixel(datamodule.normalization)
    options = speed.SpeedOptions(**OmegaConf.to_container(cfg.get("speed") or {}))
    scored = on_speed_path(module, options, lambda: calibration_inputs(path, datamodule.normalization, options.calibration,
                                                                       options.calibration_images))
    passes = {"test": TTA()} | ({"test_tta": tta} if tta.enabled else {})
    results = {"checkpoint": str(path), "data": datamodule.name, "split": datamodule.splits["test"]}
    for name, views in passes.items():
        module.net = Segmenter(scored, tiling, views, pad_value)
        trainer.test(module, datamodule=datamodule)
        results[name] = report_scores(module.results["test"], module.hparams.class_names, name, console,
                                      datamodule.categories)
    module.net = net
    if tta.enabled:
        label = f"TTA: scales {', '.join(f'{s:g}' for s in tta.scales)}{' + flips' if tta.flip else ''}"
        console.print(comparison_table({"single-scale": results["test"], label: results["test_tta"]},
                                       "single-scale vs test-time augmentation"))
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", results)
        console.print(f"Scores written to [bold]{run_dir / 'metrics.json'}[/bold]")
    return results
