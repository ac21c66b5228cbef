"""Parameters, FLOPs, receptive field and strides of any configured net (the paper's Table 1).

    python -m fcn_lit.models.summary model=fcn8s model/backbone=vgg16 size=500

Overrides are train.py's; ``size=`` (default 500, the paper's) is the square input side and
``num_classes=`` (default 21) the classes scored. FLOPs are torch's FlopCounterMode count (a
multiply-add is 2) of one forward pass, counted on the meta device (no weights, no arithmetic).
The receptive field is that of one unit of the stride-32 map the score layer reads (Table 1's
"rf size"), measured as the support of its gradient on the input in a copy of the trunk made
linear and positive (max pools averaged, ReLUs dropped, weights 1 / fan-in), so that nothing cancels.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fcn_lit.models.backbones import Trunk
from fcn_lit.models.fcn import build_fcn

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"
MAX_RF_INPUT = 2048


@dataclass(frozen=True)
class NetSummary:
    parameters: int
    flops: int
    receptive_field: int
    max_stride: int
    output_stride: int
    size: int


def count_flops(net: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass of `net` on an input of `input_shape`, counted on the meta device."""
    meta = copy.deepcopy(net).to("meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.empty(*input_shape, device="meta"))
    return counter.get_total_flops()


def build_net(model: dict[str, Any], num_classes: int, narrow: bool = False) -> tuple[nn.Module, int]:
    """The untrained net of a `model` config (cfg.model as a dict) and its input channels;
    `narrow` makes the trunk 1/16 wide where the backbone has a width. Built on the meta device
    unless narrow (weights then take no memory and no time)."""
    backbone = {**model["backbone"], "pretrained": False}  # counts and geometry do not depend on weights
    if narrow and "width" in backbone:
        backbone["width"] = 1 / 16
    options = {k: v for k, v in backbone.items() if k not in ("name", "pretrained")}
    with torch.device("cpu" if narrow else "meta"):
        net = build_fcn(backbone=backbone["name"], num_classes=num_classes, **options, **model["net"])
    streams = model["net"].get("streams")
    return net, sum(streams.values()) if streams else backbone.get("in_channels", 3)


def model_flops(model: dict[str, Any], num_classes: int, size: int = 500) -> int:
    """FLOPs of one forward pass of a `model` config's net on a `size` x `size` input."""
    net, in_channels = build_net(model, num_classes)
    return count_flops(net, (1, in_channels, size, size))


def linearized(net: nn.Module) -> nn.Module:
    """A copy whose output is a positive combination of every input pixel it can see: max pools
    become average pools of the same geometry, ReLUs and dropout vanish, norms are identities,
    every weight 1 / fan-in (positive, and no overflow however deep) and every bias 0."""
    net = copy.deepcopy(net).eval()

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, nn.MaxPool2d):
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                   ceil_mode=child.ceil_mode, count_include_pad=False))
            elif isinstance(child, (nn.ReLU, nn.Dropout, nn.Dropout2d, nn.BatchNorm2d)):
                setattr(parent, name, nn.Identity())
            else:
                swap(child)

    swap(net)
    with torch.no_grad():
        for name, param in net.named_parameters():
            param.fill_(0.0 if name.endswith("bias") else 1.0 / param[0].numel())
    return net


def receptive_field(features: nn.Module, in_channels: int, size: int) -> int:
    """Side of the input window that the centre unit of `features`' output depends on, from the
    support of its gradient; the input grows (to MAX_RF_INPUT) until the window stays inside it."""
    net = linearized(features)
    while True:
        # positive input, weights and so activations: functional ReLUs (torchvision's) pass gradients too
        image = torch.ones(1, in_channels, size, size, dtype=torch.float64, requires_grad=True)
        out = net.double()(image)
        h, w = out.shape[-2:]
        out[..., h // 2, w // 2].sum().backward()
        support = image.grad.abs().sum((0, 1)) > 0
        rows, cols = support.any(1).nonzero().squeeze(1), support.any(0).nonzero().squeeze(1)
        inside = rows[0] > 0 and cols[0] > 0 and rows[-1] < size - 1 and cols[-1] < size - 1
        if inside or size >= MAX_RF_INPUT:
            return int(max(rows[-1] - rows[0], cols[-1] - cols[0])) + 1
        size *= 2


class Stride32(nn.Module):
    """A trunk's stride-32 map alone."""

    def __init__(self, trunk: Trunk) -> None:
        super().__init__()
        self.trunk = trunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)[32]


def summarize(net: nn.Module, rf_trunk: Trunk, in_channels: int, size: int, output_stride: int) -> NetSummary:
    """Table 1's columns for `net` at a `size` x `size` input; the receptive field from `rf_trunk`
    (the same trunk, possibly narrower: width does not change it)."""
    return NetSummary(
        parameters=sum(p.numel() for p in net.parameters()),
        flops=count_flops(net, (1, in_channels, size, size)),
        receptive_field=receptive_field(Stride32(rf_trunk), in_channels, size),
        max_stride=max(rf_trunk.channels),
        output_stride=output_stride,
        size=size,
    )


def compose_model(overrides: Sequence[str]) -> dict[str, Any]:
    """cfg.model as train.py would compose it from `overrides`, as a plain dict."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    return OmegaConf.to_container(cfg.model, resolve=True)


def split_options(argv: Sequence[str]) -> tuple[list[str], int, int]:
    overrides, size, num_classes = [], 500, 21
    for arg in argv:
        key, _, value = arg.partition("=")
        if key in ("size", "num_classes"):
            if not value.isdigit() or int(value) < 1:
                raise SystemExit(f"error: {arg}: {key} takes a positive whole number, e.g. {key}=500")
            size, num_classes = (int(value), num_classes) if key == "size" else (size, int(value))
        else:
            overrides.append(arg)
    return overrides, size, num_classes


def table(summary: NetSummary, title: str) -> Table:
    out = Table(title=title)
    for column in ("parameters", f"GFLOPs at {summary.size}x{summary.size}", "rf size", "max stride", "output stride"):
        out.add_column(column, justify="right")
    out.add_row(f"{summary.parameters / 1e6:.1f}M", f"{summary.flops / 1e9:.1f}", str(summary.receptive_field),
                str(summary.max_stride), str(summary.output_stride))
    return out


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> NetSummary:
    overrides, size, num_classes = split_options(sys.argv[1:] if argv is None else argv)
    model = compose_model(overrides)
    net, in_channels = build_net(model, num_classes)
    narrow, _ = build_net(model, num_classes, narrow=True)
    trunk = next(m for m in narrow.modules() if isinstance(m, Trunk))
    summary = summarize(net, trunk, in_channels, size, model["net"]["stride"])
    (console or Console()).print(table(summary, " ".join(overrides) or "default model"))
    return summary


if __name__ == "__main__":
    main()
