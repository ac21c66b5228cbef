"""Settings checked before anything is built: a mistake is named with its key, its value and a fix,
instead of surfacing later from torch, Lightning or a worker process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from fcn_lit.errors import UserError


class ConfigError(UserError, ValueError):
    """One or more settings that cannot work; the message lists each with its fix."""


def _whole(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(low: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= low


def _crop(value: Any) -> bool:
    sizes = list(value) if isinstance(value, list | tuple) or OmegaConf.is_list(value) else [value]
    return len(sizes) in (1, 2) and all(_whole(1)(s) for s in sizes)


# key: (valid?, what it must be, an example that works)
RULES: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "data.batch_size": (_whole(1), "a whole number of images >= 1", "data.batch_size=8"),
    "data.crop_size": (_crop, "a crop size in pixels >= 1, or [height, width]", "data.crop_size=320"),
    "data.num_workers": (_whole(0), "a whole number >= 0 (0: load in the main process)", "data.num_workers=4"),
    "model.optimizer.lr": (_number(0), "a learning rate >= 0", "model.optimizer.lr=1e-4"),
    "model.optimizer.momentum": (_number(0), "a momentum >= 0", "model.optimizer.momentum=0.9"),
    "model.optimizer.weight_decay": (_number(0), "a weight decay >= 0", "model.optimizer.weight_decay=5e-4"),
    "trainer.max_epochs": (_whole(-1), "a whole number of epochs (-1: no limit)", "trainer.max_epochs=10"),
    "trainer.max_steps": (_whole(-1), "a whole number of steps (-1: no limit)", "trainer.max_steps=1000"),
    "trainer.accumulate_grad_batches": (_whole(1), "a whole number of batches >= 1",
                                        "trainer.accumulate_grad_batches=2"),
}


def check_config(cfg: DictConfig) -> None:
    """Raise a ConfigError naming every setting of ``RULES`` that ``cfg`` holds with a value that cannot
    work (keys the config does not have are not checked)."""
    problems = []
    for key, (valid, requirement, example) in RULES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not valid(value):
            shown = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
            problems.append(f"{key}={shown!r}: must be {requirement}, e.g. {example}")
    if problems:
        raise ConfigError("invalid settings (fix them on the command line or in conf/):\n  " + "\n  ".join(problems))
