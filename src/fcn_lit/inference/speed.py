"""Speed options for running an FCN: runtime and precision (``fcn_lit.inference.runtime``), channels_last,
torch.compile, inference_mode and cudnn.benchmark, as plain data (``conf/predict.yaml: speed``),
shared by predict and benchmarks/. Each option's effect is measured by ``benchmarks/run.py``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from fcn_lit.errors import UserError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = ("auto", "fp32", *AUTOCAST_DTYPES, "int8")
RUNTIMES = ("torch", "onnxruntime", "openvino", "auto")


class SpeedError(UserError, ValueError):
    """A ``speed.*`` setting this machine or runtime cannot run: the message names the key and the fix."""


def native_bf16(device: torch.device) -> bool:
    """bf16 matmuls in hardware: any CUDA GPU torch runs bf16 on, or a CPU with AVX512-BF16 or AMX
    (on AVX2 oneDNN emulates bf16, several times slower than fp32). Detected, never assumed."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


@dataclass(frozen=True)
class SpeedOptions:
    """How to run a net. ``runtime``: torch, onnxruntime (CPU), openvino (CPU) or auto (the fastest
    path whose masks agree with fp32 eager, measured once per machine, model and input size and
    remembered in ``auto_cache``: ``fcn_lit.inference.runtime.choose``). ``precision``: fp32, bf16 or fp16
    (autocast in PyTorch; bf16 is OpenVINO's inference precision), int8 (ONNX Runtime static
    quantization or OpenVINO's NNCF, calibrated on ``calibration_images`` images of
    ``calibration``: a folder or glob, null = the run's training split), or auto (see
    ``resolve``). ``onnx`` / ``openvino``: a file export.py wrote (.onnx; OpenVINO IR .xml, or
    .onnx), run instead of exporting the checkpoint's net at start (which takes tens of seconds).
    ``auto_cache``: remember auto's choices (``auto_cache_file``); false measures every time.
    ``cudnn_benchmark`` only matters on a GPU."""

    runtime: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    inference_mode: bool = True
    cudnn_benchmark: bool = True
    calibration: str | None = None
    calibration_images: int = 32
    onnx: str | None = None
    openvino: str | None = None
    auto_cache: bool = True

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise SpeedError(f"speed.runtime={self.runtime!r} is not one of {RUNTIMES}")
        if self.precision not in PRECISIONS:
            raise SpeedError(f"speed.precision={self.precision!r} is not one of {PRECISIONS}")
        if self.calibration_images < 1:
            raise SpeedError(f"speed.calibration_images={self.calibration_images} must be >= 1")

    def resolve(self, device: torch.device) -> SpeedOptions:
        """Replace precision="auto" by a rule (no measurement): fp32 on ONNX Runtime (its CPU
        provider runs fp32 and int8, whatever the CPU), else bf16 where the hardware has it
        natively (``native_bf16``; PyTorch and OpenVINO), else fp32."""
        if self.precision != "auto":
            return self
        return replace(self, precision="bf16" if self.runtime != "onnxruntime" and native_bf16(device) else "fp32")


def prepare(net: nn.Module, options: SpeedOptions, device: torch.device) -> nn.Module:
    """Move ``net`` to ``device`` in the options' memory format; compile it if asked."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = options.cudnn_benchmark
    net = net.to(device, memory_format=torch.channels_last if options.channels_last else torch.contiguous_format)
    # dynamic=True: one graph for every image size instead of a recompile per size.
    return torch.compile(net, dynamic=True) if options.compile else net


def to_input(x: Tensor, options: SpeedOptions, device: torch.device) -> Tensor:
    """A batch on ``device`` in the options' memory format."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if options.channels_last else x


@contextmanager
def inference(options: SpeedOptions, device: torch.device) -> Iterator[None]:
    """inference_mode (or no_grad) and autocast to the options' bf16/fp16 precision."""
    with ExitStack() as stack:
        stack.enter_context(torch.inference_mode() if options.inference_mode else torch.no_grad())
        precision = options.resolve(device).precision
        if precision in AUTOCAST_DTYPES:
            stack.enter_context(torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision]))
        yield


def pick_device(name: str = "auto") -> torch.device:
    """"auto": the GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but CUDA is not available here; use device=cpu or device=auto")
    return torch.device(name)
