"""Export an FCN to ONNX (dynamic height and width), OpenVINO IR, int8 ONNX / IR, and TorchScript.

``python export.py ckpt_path=<run>/checkpoints/best.ckpt output=fcn8s`` writes fcn8s.onnx and
fcn8s.pt; with openvino in ``formats`` also its OpenVINO IR fcn8s.xml + fcn8s.bin; with
``quantize=int8`` also fcn8s.int8.onnx (``fcn_lit.runtime.quantize_int8``) and, with openvino,
fcn8s.int8.xml + .bin (NNCF). Every format keeps the crops size-dependent in either alignment
mode: tests/inference/test_export.py checks them against eager PyTorch on inputs of several sizes.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
import torch
from torch import nn

from fcn_lit.errors import UserError
from fcn_lit.module import PRIMARY_HEAD

FORMATS = ("onnx", "openvino", "torchscript")
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


def export(ckpt_path: str | Path, output: str | Path, formats: tuple[str, ...] = ("onnx", "torchscript"), *,
           example_size: int = 224, opset: int = 18, quantize: str | None = None, calibration: str | None = None,
           calibration_images: int = 32) -> list[Path]:
    """Export a train.py checkpoint (or a pytorch-fcn .pth) to ``<output>.onnx`` and ``<output>.pt``;
    "openvino" in ``formats`` converts the ONNX file to ``<output>.xml`` + ``.bin``;
    ``quantize="int8"`` adds ``<output>.int8.onnx`` (and ``<output>.int8.xml`` + ``.bin`` with
    openvino), calibrated on ``calibration_images`` images of ``calibration`` (folder or glob;
    None: the run's training split)."""
    from fcn_lit import openvino_runtime
    from fcn_lit.predict import calibration_inputs, load_predictor
    from fcn_lit.runtime import quantize_int8

    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ExportError(f"formats={list(formats)} has unknown {unknown}; choose from {FORMATS}")
    if quantize not in (None, "int8"):
        raise ExportError(f"quantize={quantize!r} is not one of null, int8")
    if ("openvino" in formats or quantize) and "onnx" not in formats:
        raise ExportError(f"formats={list(formats)}{' with quantize=int8' if quantize else ''}: OpenVINO IR and int8 "
                          "are converted from the ONNX export, so add onnx to formats")
    predictor = load_predictor(ckpt_path)
    output = Path(output)
    written = []
    if "onnx" in formats:
        onnx_file = export_onnx(predictor.net, output.with_suffix(".onnx"), example_size=example_size, opset=opset)
        written.append(onnx_file)
        inputs = calibration_inputs(ckpt_path, predictor.normalization, calibration, calibration_images) if quantize else []
        if quantize:
            written.append(quantize_int8(onnx_file, output.with_suffix(".int8.onnx"), inputs))
        if "openvino" in formats:
            model = openvino_runtime.read(onnx_file)
            written += ir_files(openvino_runtime.save_ir(model, output.with_suffix(".xml")))
            if quantize:
                int8 = openvino_runtime.quantize(model, inputs)
                written += ir_files(openvino_runtime.save_ir(int8, output.with_suffix(".int8.xml")))
    if "torchscript" in formats:
        written.append(export_torchscript(predictor.net, output.with_suffix(".pt"), example_size=example_size))
    return written


def ir_files(xml: Path) -> list[Path]:
    return [xml, xml.with_suffix(".bin")]


class ExportError(UserError, ValueError):
    """export.py settings that do not go together."""
