"""Training entry: a composed config in; checkpoints, metrics.json and pictures in the run dir out."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig
from rich.console import Console

from fcn_lit.checkpointing import AtomicCheckpointIO, check_resumable, load_checkpoint, local_checkpoint, logged_steps
from fcn_lit.config_check import check_config
from fcn_lit.models.pretrained import input_preprocessing
from fcn_lit.module import PRIMARY_HEAD, FCNModule
from fcn_lit.report import print_config
from fcn_lit.rundir import record_config, run_directory_lock
from fcn_lit.summary import named_scores, print_scores, score_or_none, write_json
from fcn_lit.sweeps import check_multirun_ddp
from fcn_lit.visualize import save_comparison
from fcn_lit.wandb_logging import finish_wandb


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a callbacks/logger group (a dict of configs)."""
    return [instantiate(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test and report one run; returns the scores and the paths it wrote. A config with
    ``stages`` runs staged fine-tuning instead (fcn_lit.staged). The run holds its directory's lock
    (fcn_lit.rundir); a resume checks its checkpoint before it writes anything there."""
    check_config(cfg)
    check_multirun_ddp(cfg)
    if cfg.get("stages"):
        from fcn_lit.staged import train_staged

        return train_staged(cfg)
    console = Console()
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_directory_lock(run_dir, console):
        try:
            return _train(cfg, run_dir, console)
        except SIGTERMException as stopped:  # fcn_lit.preemption.CheckpointOnSignal sets 128 + the signal
            stopped.code = stopped.code or 128 + signal.SIGTERM
            raise
        finally:
            finish_wandb()  # also after a failure, so that the next run of a sweep starts its own


def _train(cfg: DictConfig, run_dir: Path, console: Console) -> dict[str, Any]:
    start = time.perf_counter()
    ckpt_path = resume_checkpoint(cfg.get("ckpt_path"), run_dir)
    checkpoint = load_checkpoint(ckpt_path, mmap=True) if ckpt_path else None
    print_config(cfg, console)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    # The input the trunk's weights expect (fcn_lit.models.pretrained.WEIGHTS), unless data.normalization overrides it.
    normalization = input_preprocessing(cfg.model.backbone, cfg.data.get("normalization")).name
    datamodule = instantiate(cfg.data, normalization=normalization)
    # Fail before building the net and the trainer when the data is missing or broken.
    datamodule.prepare_data()
    module: FCNModule = instantiate(
        cfg.model,
        num_classes=datamodule.num_classes,
        class_names=list(datamodule.class_names),
        task_heads=datamodule.task_heads,
        ignore_index=datamodule.ignore_index,
        excluded_classes=datamodule.excluded_classes,
    )
    if checkpoint is not None and cfg.get("train", True):
        check_resumable(checkpoint, ckpt_path, module)
    step = logged_steps(checkpoint) if checkpoint is not None else None
    del checkpoint
    if cfg.get("init_from"):
        module.transplant_from(cfg.init_from)
    continues = record_config(run_dir, cfg, ckpt_path, step)
    loggers = instantiate_all(cfg.get("logger"))
    if continues:
        for logger in loggers:
            if hasattr(logger, "continue_from"):
                logger.continue_from(step)
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=instantiate_all(cfg.get("callbacks")),
        logger=loggers or False,
        plugins=[AtomicCheckpointIO()],
    )

    if cfg.get("train", True):
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    best = _best_checkpoint(trainer) or (None if cfg.get("train", True) else ckpt_path)
    results: dict[str, Any] = {"run_dir": str(run_dir), "checkpoint": best and str(best)}
    if best and trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_score is not None:
        # None when validation scored no pixel (Lightning keeps -inf as the best of NaN scores).
        results["best_val_mean_iu"] = score_or_none(trainer.checkpoint_callback.best_model_score.item())
    if cfg.get("test", True) and not datamodule.splits["test"]:
        console.print("No test: data.val_split and data.test_split are null.")
    elif cfg.get("test", True):
        trainer.test(module, datamodule=datamodule, ckpt_path=best, weights_only=True)
        results["test"] = report_scores(module.results["test"], module.hparams.class_names, "test", console)
        if trainer.is_global_zero and cfg.get("num_pictures", 0):
            results["pictures"] = str(save_pictures(module, datamodule, run_dir / "predictions.png", cfg.num_pictures))
    results["elapsed_s"] = round(time.perf_counter() - start, 1)
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", results)
        console.print(f"Finished in {results['elapsed_s']:.0f} s. Run directory: [bold]{run_dir}[/bold]")
    return results


def resume_checkpoint(ckpt_path: str | None, run_dir: Path) -> Path | None:
    """The local checkpoint file a run continues from: ``last`` is this run directory's last.ckpt
    (None when there is none yet), a URL is downloaded to the cache first. Without ckpt_path, a
    SLURM job requeued by Lightning continues from the newest hpc_ckpt_<n>.ckpt it saved, as
    Lightning itself would."""
    if ckpt_path is None and SLURMEnvironment.detect():
        saved = sorted(run_dir.glob("hpc_ckpt_*.ckpt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        return saved[-1] if saved else None
    if ckpt_path != "last":
        return local_checkpoint(ckpt_path) if ckpt_path else None
    last = run_dir / "checkpoints" / "last.ckpt"
    return last if last.exists() else None


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    """The best checkpoint by validation mean IU; without validation (data.val_split=null), last.ckpt."""
    paths = [c.best_model_path for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
    return next((path for path in paths if path), None)


def report_scores(head_scores: dict[str, dict[str, Any]], class_names: list[str], stage: str, console: Console) -> dict[str, Any]:
    """Print the primary head's tables; return scores keyed by class name, other heads nested."""
    primary = head_scores[PRIMARY_HEAD]
    print_scores(primary, class_names, f"{stage} ({PRIMARY_HEAD})" if len(head_scores) > 1 else stage, console)
    out = named_scores(primary, class_names)
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
