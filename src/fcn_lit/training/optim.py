"""The optimizer and its schedule: the paper's SGD recipe (Section 4.1) and the release's variants.

Both builders take the plain keys of a Hydra dict:
``build_optimizer(net, **cfg.model.optimizer)``,
``build_scheduler(optimizer, total_steps, **cfg.model.scheduler)``.
"""

import inspect
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def _reject_unknown(unknown: dict, builder: Callable, where: str) -> None:
    if unknown:
        params = inspect.signature(builder).parameters.values()
        accepted = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; accepted keys: {accepted}")


def _check_name(name: str, accepted: tuple[str, ...], where: str) -> None:
    if name not in accepted:
        raise ValueError(f"{where}.name={name!r}: choose one of {list(accepted)}")


def build_optimizer(
    net: nn.Module,
    *,
    lr: float,
    name: str = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    bias_lr_mult: float = 2.0,
    bias_decay: bool = False,
    betas: Sequence[float] = (0.9, 0.999),
    **unknown,
) -> Optimizer:
    """SGD with momentum (or AdamW, with ``betas``) over three parameter groups.

    ``weights``: lr and weight decay. ``biases``: ``bias_lr_mult`` x lr, decayed only with
    ``bias_decay`` (the release: 2x lr, no decay). ``norm_scales``, the other 1-D parameters such as
    BatchNorm's gamma: lr, no decay. Frozen parameters (``requires_grad=False``, e.g. the bilinear
    upsampling) are left out. Empty groups are dropped; each group carries its ``name``.
    """
    _reject_unknown(unknown, build_optimizer, "model.optimizer")
    _check_name(name, ("sgd", "adamw"), "model.optimizer")
    weights, biases, norm_scales = [], [], []
    for param_name, param in net.named_parameters():
        if not param.requires_grad:
            continue
        if param_name.endswith("bias"):
            biases.append(param)
        elif param.ndim <= 1:
            norm_scales.append(param)
        else:
            weights.append(param)
    if not weights + biases + norm_scales:
        raise ValueError(
            f"{type(net).__name__} has no parameter with requires_grad=True to optimize"
        )
    groups = [
        {"name": "weights", "params": weights, "lr": lr, "weight_decay": weight_decay},
        {
            "name": "biases",
            "params": biases,
            "lr": lr * bias_lr_mult,
            "weight_decay": weight_decay if bias_decay else 0.0,
        },
        {"name": "norm_scales", "params": norm_scales, "lr": lr, "weight_decay": 0.0},
    ]
    groups = [group for group in groups if group["params"]]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas))


def build_scheduler(
    optimizer: Optimizer,
    total_steps: int | float,
    *,
    name: str = "fixed",
    power: float = 0.9,
    warmup_steps: int = 0,
    **unknown,
) -> LambdaLR:
    """Scale every group's lr per iteration: ``fixed`` (the release) or ``poly``, (1 - step /
    total_steps) ** power, both after an optional linear warmup. Step it every iteration
    (Lightning's ``"interval": "step"``); groups keep their lr ratios (biases stay at 2x)."""
    _reject_unknown(unknown, build_scheduler, "model.scheduler")
    _check_name(name, ("fixed", "poly"), "model.scheduler")
    if name == "poly" and not total_steps > 0:
        raise ValueError(
            f"total_steps={total_steps}: the poly schedule needs a positive number of steps"
        )

    def factor(step: int) -> float:
        warmup = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
        decay = (1 - min(step, total_steps) / total_steps) ** power if name == "poly" else 1.0
        return warmup * decay

    return LambdaLR(optimizer, factor)


def apply_configured_settings(optimizer: Optimizer, scheduler: LambdaLR, configured: Optimizer) -> list[str]:
    """Give an optimizer and its schedule restored from a checkpoint the hyperparameters of
    ``configured`` (built from the config now): lr, momentum, weight decay, betas per group. The
    schedule keeps its step and recomputes each group's lr from the new base lr. Returns the changes
    as 'group key: old -> new'."""
    changes = []
    for group, new in zip(optimizer.param_groups, configured.param_groups, strict=True):
        old_base = group.get("initial_lr", group["lr"])
        if old_base != new["lr"]:
            changes.append(f"{group.get('name', '')} lr: {old_base:g} -> {new['lr']:g}")
        group["initial_lr"] = new["lr"]
        for key, value in new.items():
            if key not in ("params", "lr", "initial_lr") and group.get(key) != value:
                changes.append(f"{group.get('name', '')} {key}: {group.get(key)} -> {value}")
                group[key] = value
    scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    scheduler._last_lr = []
    for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base * factor(scheduler.last_epoch)
        scheduler._last_lr.append(group["lr"])
    return changes
