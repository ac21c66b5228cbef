"""The exported forms of a net: an ONNX graph (dynamic batch, height and width) and a traced
TorchScript module. Both keep the crops size-dependent in either alignment mode:
tests/inference/test_export.py checks them against eager PyTorch on inputs of several sizes. The
export task (a checkpoint in, files out) is fcn_lit.inference.export; the ONNX Runtime and
OpenVINO paths (fcn_lit.inference.runtime) use export_onnx too."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
import torch
from torch import nn

from fcn_lit.models import PRIMARY_HEAD

ONNX_FILE_LIMIT = 2**31  # bytes: protobuf's limit for one .onnx file

log = logging.getLogger(__name__)


class SingleOutput(nn.Module):
    """A net whose output is one tensor of logits (multi-head nets: the semantic head)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out[PRIMARY_HEAD] if isinstance(out, dict) else out


def _plain(model: nn.Module, in_channels: int, size: int) -> tuple[nn.Module, torch.Tensor]:
    net = model.net if isinstance(model, L.LightningModule) else model
    # Batch 2: torch.export would specialise a batch of 1 to a constant.
    return SingleOutput(net).eval(), torch.randn(2, in_channels, size, size)


def export_onnx(model: nn.Module, path: str | Path, *, in_channels: int = 3, example_size: int = 224,
                opset: int = 18, optimize: bool = True) -> Path:
    """An ONNX graph ``image (N, C, H, W) -> logits (N, K, H, W)`` with dynamic N, H and W, via the
    torch.export-based exporter (the legacy one bakes the head's crop sizes in). ``optimize=False``
    skips onnxscript's graph optimizer (most of the export's time), for a file that ONNX Runtime
    or OpenVINO optimize themselves when they load it."""
    net, example = _plain(model, in_channels, example_size)
    batch, height, width = (torch.export.Dim(n, min=1, max=8192) for n in ("batch", "height", "width"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One self-contained file unless the weights pass protobuf's 2 GB limit (no FCN here does).
    external = weight_bytes(net) >= ONNX_FILE_LIMIT
    torch.onnx.export(
        net, (example,), path, input_names=["image"], output_names=["logits"], opset_version=opset,
        dynamic_shapes={"x": {0: batch, 2: height, 3: width}}, dynamo=True, verbose=False,
        external_data=external, optimize=optimize,
    )
    if external:
        log.warning("%s: the weights (%.1f GB) pass ONNX's 2 GB limit for one file, so they are in %s "
                    "beside it; copy both files together.", path, weight_bytes(net) / 1e9, f"{path.name}.data")
    return path


def weight_bytes(net: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*net.parameters(), *net.buffers()])


def export_torchscript(model: nn.Module, path: str | Path, *, in_channels: int = 3, example_size: int = 224) -> Path:
    """A traced TorchScript module. Tracing (the net is not scriptable) records the shape arithmetic
    of the crops, so the module runs on any size; the tests check odd sizes in both alignments."""
    net, example = _plain(model, in_channels, example_size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # the shape checks are the point
        traced = torch.jit.trace(net, example)
    traced.save(str(path))
    return path
