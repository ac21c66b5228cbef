"""Parameters, FLOPs and receptive field against hand counts, the paper's Table 1 and a real run."""

import pytest
import torch
from omegaconf import OmegaConf
from rich.console import Console
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fcn_lit.experiments.report import Run, comparison_rows, to_markdown
from fcn_lit.models import build_fcn
from fcn_lit.models.summary import Stride32, count_flops, main, receptive_field
from runconfig import compose_config


def test_flops_of_a_tiny_net_are_its_hand_counted_multiply_adds():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 5, 3, stride=2))
    # conv1: 4 x 16 x 16 outputs of 3*3*3 multiply-adds; conv2: 5 x 3 x 3 outputs of 4*3*3; a multiply-add is 2
    assert count_flops(net, (1, 3, 16, 16)) == 2 * (4 * 16 * 16 * 27 + 5 * 3 * 3 * 36)


def analytic_rf(layers: list[tuple[int, int, int]]) -> int:
    """rf = 1 + sum (k - 1) * dilation * (product of the strides before): layers (kernel, stride, dilation)."""
    rf, jump = 1, 1
    for kernel, stride, dilation in layers:
        rf += (kernel - 1) * dilation * jump
        jump *= stride
    return rf


def test_receptive_field_of_a_chain_is_the_analytic_one():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                        nn.Conv2d(2, 2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1),
                        nn.Conv2d(2, 2, 3, padding=2, dilation=2))
    expected = analytic_rf([(3, 1, 1), (2, 2, 1), (5, 1, 1), (3, 2, 1), (3, 1, 2)])
    assert receptive_field(net, 1, 16) == expected  # 16 < rf: the input grows until it holds the window


def test_receptive_field_of_alexnet_is_table_1s():  # VGG16's 404: the command test below
    net = build_fcn("alexnet", stride=32, num_classes=2, width=1 / 16, alignment="aligned")
    assert receptive_field(Stride32(net.trunk), 3, 256) == 355


def test_summary_command_counts_the_configured_net():
    console = Console(record=True, width=200)
    summary = main(["model=fcn8s", "model/backbone=vgg16_tiny", "size=64", "num_classes=5"], console=console)
    net = build_fcn("vgg16", stride=8, num_classes=5, width=0.125, norm="batch", alignment="aligned")
    assert summary.parameters == sum(p.numel() for p in net.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net.eval()(torch.zeros(1, 3, 64, 64))
    assert summary.flops == counter.get_total_flops()
    assert (summary.receptive_field, summary.max_stride, summary.output_stride) == (404, 32, 8)
    assert "rf size" in console.export_text()
    with pytest.raises(SystemExit, match="size=big"):
        main(["size=big"])


def test_report_adds_each_runs_flops_at_500(tmp_path):
    cfg = compose_config(tmp_path, ["model=fcn16s", "model/backbone=vgg16_tiny", "model.backbone.width=0.0625"])
    run = Run(tmp_path, "run", OmegaConf.to_container(cfg, resolve=True),
              {"test": {"per_class_iu": {str(c): 0.5 for c in range(4)}}})
    (row,) = comparison_rows([run])
    net = build_fcn("vgg16", stride=16, num_classes=4, width=0.0625, norm="batch", alignment="aligned")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net.eval()(torch.zeros(1, 3, 500, 500))
    assert row["gflops"] == pytest.approx(counter.get_total_flops() / 1e9, rel=1e-12)
    assert f"| {row['gflops']:.1f} |" in to_markdown([row])
