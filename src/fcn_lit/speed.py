"""Speed options for running an FCN: channels_last, torch.compile, inference_mode, autocast and
cudnn.benchmark, as plain data (``conf/predict.yaml: speed``), shared by predict and benchmarks/.
Each option's effect is measured by ``benchmarks/run.py``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class SpeedOptions:
    """How to run a net. ``autocast``: None, "bf16" or "fp16" ("auto" picks per device, see
    ``resolve``); ``cudnn_benchmark`` only matters on a GPU."""

    channels_last: bool = True
    compile: bool = False
    inference_mode: bool = True
    autocast: str | None = "auto"
    cudnn_benchmark: bool = True

    def __post_init__(self) -> None:
        if self.autocast not in (None, "auto", *AUTOCAST_DTYPES):
            raise ValueError(f"speed.autocast={self.autocast!r} is not one of null, auto, {tuple(AUTOCAST_DTYPES)}")

    def resolve(self, device: torch.device) -> SpeedOptions:
        """Replace autocast="auto": bf16 on a GPU; on a CPU bf16 only with native bf16 matmuls
        (AVX512-BF16 / AMX), since on AVX2 oneDNN emulates it several times slower than fp32."""
        if self.autocast != "auto":
            return self
        native = device.type == "cuda" or torch.ops.mkldnn._is_mkldnn_bf16_supported()
        return SpeedOptions(self.channels_last, self.compile, self.inference_mode, "bf16" if native else None,
                            self.cudnn_benchmark)


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
    """inference_mode (or no_grad) and autocast, as the options ask."""
    with ExitStack() as stack:
        stack.enter_context(torch.inference_mode() if options.inference_mode else torch.no_grad())
        autocast = options.resolve(device).autocast
        if autocast:
            stack.enter_context(torch.autocast(device.type, dtype=AUTOCAST_DTYPES[autocast]))
        yield


def pick_device(name: str = "auto") -> torch.device:
    """"auto": the GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but CUDA is not available here; use device=cpu or device=auto")
    return torch.device(name)
