"""Training entry: a composed config in; checkpoints, metrics.json and pictures in the run dir out."""

from __future__ import annotations

import copy
import logging
import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, open_dict
from rich.console import Console

from fcn_lit.training.checkpointing import check_resumable, load_checkpoint, local_checkpoint, logged_steps
from fcn_lit.config_check import check_config
from fcn_lit.training.devices import check_devices, resolve_trainer
from fcn_lit.training.module import FCNModule
from fcn_lit.experiments.report import print_config
from fcn_lit.experiments.rundir import record_config, run_directory_lock
from fcn_lit.experiments.scores import score_or_none, write_json
from fcn_lit.experiments.sweeps import check_multirun_ddp
from fcn_lit.training.tasks import build_datamodule, build_trainer, instantiate_all, last_checkpoint, report_scores, save_pictures
from fcn_lit.experiments.wandb_logging import finish_wandb


log = logging.getLogger(__name__)


def job_config(cfg: DictConfig) -> DictConfig:
    """The job's own settings: a config composed with ``return_hydra_config=True`` (the in-process
    pattern of lightning-hydra-template) carries Hydra's node, whose sweep keys (hydra.job.num) have
    no value in a single run; it is left out of the copy the run uses and records."""
    if "hydra" not in cfg:
        return cfg
    job = copy.deepcopy(cfg)
    with open_dict(job):
        del job["hydra"]
    return job


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test and report one run; returns the scores and the paths it wrote (a config with
    ``stages`` goes to fcn_lit.training.staged.train_staged: the root train.py dispatches). The run holds its
    directory's lock (fcn_lit.experiments.rundir); a resume checks its checkpoint before it writes anything there."""
    cfg = job_config(cfg)
    check_config(cfg)
    check_multirun_ddp(cfg)
    check_devices(cfg.trainer)
    if cfg.get("stages"):
        raise ValueError("a config with stages is a staged run: call fcn_lit.training.staged.train_staged(cfg, train)")
    console = Console()
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_directory_lock(run_dir, console):
        try:
            return _train(cfg, run_dir, console)
        except SIGTERMException as stopped:  # fcn_lit.training.preemption.CheckpointOnSignal sets 128 + the signal
            stopped.code = stopped.code or 128 + signal.SIGTERM
            raise
        finally:
            finish_wandb()  # also after a failure, so that the next run of a sweep starts its own


def _train(cfg: DictConfig, run_dir: Path, console: Console) -> dict[str, Any]:
    start = time.perf_counter()
    ckpt_path = resume_checkpoint(cfg.get("ckpt_path"), run_dir, last_checkpoint(cfg))
    checkpoint = load_checkpoint(ckpt_path, mmap=True) if ckpt_path else None
    print_config(cfg, console)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg.data, cfg.model.backbone)
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
    resolve_trainer(cfg.trainer, module)  # auto accelerator, strategy, precision, sync BN: recorded resolved
    continues = record_config(run_dir, cfg, ckpt_path, step)
    loggers = instantiate_all(cfg.get("logger"))
    if continues:
        for logger in loggers:
            if hasattr(logger, "continue_from"):
                logger.continue_from(step)
    trainer = build_trainer(cfg, logger=loggers or False)

    if cfg.get("train", True):
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    best = _best_checkpoint(trainer) or (None if cfg.get("train", True) else ckpt_path)
    results: dict[str, Any] = {"run_dir": str(run_dir), "checkpoint": best and str(best)}
    if best and trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_score is not None:
        # None when validation scored no pixel (Lightning keeps -inf as the best of NaN scores).
        results["best_val_mean_iu"] = score_or_none(trainer.checkpoint_callback.best_model_score.item())
    if "val/mean_iu" in trainer.callback_metrics:  # also where no checkpoint was scored (fast_dev_run)
        results["last_val_mean_iu"] = score_or_none(float(trainer.callback_metrics["val/mean_iu"]))
    if cfg.get("test", True) and not datamodule.splits["test"]:
        console.print("No test: data.val_split and data.test_split are null.")
    elif cfg.get("test", True):
        trainer.test(module, datamodule=datamodule, ckpt_path=best, weights_only=True)
        if "test" not in module.results:  # tested in spawned processes (ddp_spawn)
            module.restore_results("test", trainer.callback_metrics)
        results["test"] = report_scores(module.results["test"], module.hparams.class_names, "test", console,
                                        datamodule.categories)
        if trainer.is_global_zero and cfg.get("num_pictures", 0):
            results["pictures"] = str(save_pictures(module, datamodule, run_dir / "predictions.png", cfg.num_pictures))
    results["elapsed_s"] = round(time.perf_counter() - start, 1)
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", results)
        log.info("Finished in %.0f s; best checkpoint %s; metrics in %s", results["elapsed_s"], best, run_dir / "metrics.json")
        console.print(f"Finished in {results['elapsed_s']:.0f} s. Run directory: [bold]{run_dir}[/bold]")
    return results


def resume_checkpoint(ckpt_path: str | None, run_dir: Path, last: Path | None = None) -> Path | None:
    """The local checkpoint file a run continues from: ``last`` names ``last`` (the file of the
    config's last_checkpoint callback, ``fcn_lit.training.tasks.last_checkpoint``; None when there is none
    yet), a URL is downloaded to the cache first. Without ckpt_path, a SLURM job requeued by
    Lightning continues from the newest hpc_ckpt_<n>.ckpt it saved, as Lightning itself would."""
    if ckpt_path is None and SLURMEnvironment.detect():
        saved = sorted(run_dir.glob("hpc_ckpt_*.ckpt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        return saved[-1] if saved else None
    if ckpt_path != "last":
        return local_checkpoint(ckpt_path) if ckpt_path else None
    return last


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    """The best checkpoint by validation mean IU; without validation (data.val_split=null), last.ckpt."""
    paths = [c.best_model_path for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
    return next((path for path in paths if path), None)
