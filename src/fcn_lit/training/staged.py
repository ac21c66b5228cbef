"""Staged fine-tuning (paper Section 4.2): FCN-32s, then FCN-16s from the best 32s checkpoint, then
FCN-8s from the best 16s, as one command: `python train.py experiment=voc_fcn8s_staged`.

Each stage is a sub-run `<run dir>/<name>/` (name defaults to `fcn<stride>s`) with its own
checkpoints and metrics.json; the run dir gets `summary.json` with every stage's scores. A stage
starts from the previous stage's best checkpoint unless it says ``init_from``: null (ImageNet), an
earlier stage's name, or ``{stream: stage name}`` for a late-fusion net (NYUDv2 RGB-HHA from the
RGB and HHA stages); ``config`` merges settings into that stage (``{data: {modalities: [hha]}}``).
Rerunning with the same run dir (`hydra.run.dir=<run dir>`) skips stages that wrote metrics.json
and resumes an unfinished stage from its last.ckpt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console
from rich.table import Table

from fcn_lit.experiments.scores import METRIC_NAMES, percent, write_json
from fcn_lit.training.tasks import last_checkpoint

STAGE_KEYS = {"name", "stride", "lr", "max_epochs", "max_steps", "init_from", "config"}


def stage_name(stage: DictConfig) -> str:
    return stage.get("name") or f"fcn{stage.stride}s"


def stage_init(stage: DictConfig, best: dict[str, str], previous: str | None) -> str | dict[str, str] | None:
    """The checkpoint(s) a stage starts from: ``previous`` unless the stage names its own."""
    if "init_from" not in stage:
        return previous
    source = stage.init_from
    if source is None:
        return None
    names = {source: source} if isinstance(source, str) else dict(source)
    unknown = sorted(set(names.values()) - best.keys())
    if unknown:
        raise ValueError(f"stage {stage_name(stage)!r}: init_from names {unknown}, not an earlier stage of {list(best)}")
    return best[source] if isinstance(source, str) else {stream: best[name] for stream, name in names.items()}


def stage_config(cfg: DictConfig, stage: DictConfig, init_from: str | dict[str, str] | None) -> DictConfig:
    """The single-run config of one stage: its settings, stride, lr and length, its own sub-run
    directory, resumed from its last.ckpt if one exists, else started from ``init_from``."""
    unknown = set(stage) - STAGE_KEYS
    if unknown or "stride" not in stage or "lr" not in stage:
        raise ValueError(
            f"stages entry {OmegaConf.to_container(stage)}: give stride and lr (and max_epochs or "
            f"max_steps); unknown keys {sorted(unknown)}, accepted {sorted(STAGE_KEYS)}"
        )
    sub = cfg.copy()
    with open_dict(sub):
        del sub.stages
        sub.merge_with(stage.get("config") or {})
        sub.paths.output_dir = str(Path(cfg.paths.output_dir) / stage_name(stage))
        last = last_checkpoint(sub)
        sub.model.net.stride = stage.stride
        sub.model.optimizer.lr = stage.lr
        for key in ("max_epochs", "max_steps"):
            if key in stage:
                sub.trainer[key] = stage[key]
        sub.ckpt_path = str(last) if last else None
        sub.init_from = None if last else init_from
    return sub


def train_staged(cfg: DictConfig, train: Callable[[DictConfig], dict[str, Any]]) -> dict[str, Any]:
    """Run ``cfg.stages`` in order, each a single run of ``train`` (fcn_lit.training.train.train); returns the
    summary (also written to summary.json)."""
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    console = Console()
    stages: dict[str, Any] = {}
    best: dict[str, str] = {}
    previous_best = cfg.get("init_from")
    for stage in cfg.stages:
        name = stage_name(stage)
        metrics = run_dir / name / "metrics.json"
        if metrics.exists():
            console.print(f"[bold]{name}[/bold]: finished earlier, metrics in {metrics}")
            results = json.loads(metrics.read_text())
        else:
            console.rule(f"[bold]{name}[/bold] (lr {stage.lr:g})")
            results = train(stage_config(cfg, stage, stage_init(stage, best, previous_best)))
        if not results.get("checkpoint"):
            raise RuntimeError(f"stage {name} left no best checkpoint in {run_dir / name}: enable callbacks.model_checkpoint")
        stages[name] = {"lr": stage.lr, **results}
        previous_best = best[name] = results["checkpoint"]
    summary = {"run_dir": str(run_dir), "stages": stages}
    last = stages[stage_name(cfg.stages[-1])]
    if "best_val_mean_iu" in last:
        summary["best_val_mean_iu"] = last["best_val_mean_iu"]
    write_json(run_dir / "summary.json", summary)
    console.print(summary_table(stages))
    return summary


def summary_table(stages: dict[str, Any]) -> Table:
    """One row per stage: lr, best validation mean IU and the four test metrics (percent)."""
    table = Table(title="staged fine-tuning")
    for column in ("stage", "lr", "best val mean IU", *(f"test {m}" for m in METRIC_NAMES.values())):
        table.add_column(column, justify="right")
    for name, results in stages.items():
        test = results.get("test", {})
        scores = [test.get(key) for key in METRIC_NAMES]
        table.add_row(
            name,
            f"{results['lr']:g}",
            percent(results.get("best_val_mean_iu")),
            *(percent(s) for s in scores),
        )
    return table
