"""OpenVINO on the CPU: the net's ONNX export (or an IR that export.py wrote) compiled for this CPU
in fp32, bf16 (``INFERENCE_PRECISION_HINT``, where the CPU has bf16 natively) or int8 (NNCF
post-training quantization). Used by ``fcn_lit.inference.runtime`` as ``speed.runtime=openvino``.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

log = logging.getLogger(__name__)

# speed.precision -> OpenVINO's inference precision; int8 graphs run their quantized layers in int8
# and the rest in the CPU's default (bf16 where native).
HINTS = {"fp32": "f32", "bf16": "bf16", "int8": None}
# Compiled models kept, one per input shape: a new size costs a compile (about a second for VGG16).
COMPILED_SHAPES = 16


@functools.cache
def core() -> Any:
    """The process's one ``openvino.Core``, its CPU plugin loaded. Each Core's CPU plugin installs an
    alternate signal stack of its own on the calling thread and, freed, unmaps it and restores the one
    it found. Cores freed in another order than made (as garbage collection frees them) leave the
    thread on an unmapped signal stack, and its next handled signal (Ctrl-C; a child process's exit
    once a DataLoader has set its SIGCHLD handler) kills the process with SIGSEGV. One Core, kept,
    loaded first (NNCF makes and frees its own above it), never does."""
    import openvino as ov

    shared = ov.Core()
    shared.get_property("CPU", "FULL_DEVICE_NAME")
    return shared


def read(path: str | Path) -> Any:
    """An ``openvino.Model`` from an .onnx file or an IR .xml (its .bin beside it)."""
    return core().read_model(str(path))


def is_quantized(model: Any) -> bool:
    """Whether the graph holds NNCF's (or an int8 ONNX file's) quantize operations."""
    return any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


def quantize(model: Any, calibration: Sequence[np.ndarray]) -> Any:
    """NNCF post-training quantization: 8-bit weights and activations, ranges from ``calibration``
    ((1, C, H, W) float32 inputs, sizes may differ)."""
    try:
        import nncf
    except ImportError as error:
        from fcn_lit.inference.speed import SpeedError

        raise SpeedError("speed.precision=int8 on OpenVINO quantizes with NNCF, which is not installed: "
                         "pip install 'fcn-lit[export]' (or pip install nncf)") from error
    batches = [np.ascontiguousarray(batch, dtype=np.float32) for batch in calibration]
    core()  # loaded before NNCF's own Cores: theirs are freed above it (see core())
    return nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches),
                         preset=nncf.QuantizationPreset.PERFORMANCE)


def save_ir(model: Any, xml: str | Path) -> Path:
    """``model`` as OpenVINO IR: ``xml`` and its .bin beside it, weights kept in fp32 (OpenVINO
    compresses them to fp16 by default); written under temporary names, then moved into place."""
    import openvino as ov

    xml = Path(xml)
    xml.parent.mkdir(parents=True, exist_ok=True)
    partial = xml.with_name(xml.stem + ".partial.xml")
    ov.save_model(model, str(partial), compress_to_fp16=False)
    partial.with_suffix(".bin").replace(xml.with_suffix(".bin"))
    partial.replace(xml)
    return xml


class OpenVinoRunner:
    """An OpenVINO model called like the net: a float (N, C, H, W) tensor in, logits out. Each input
    shape gets its own static compile (faster than a dynamic one), kept for the next batch of that
    shape; predict batches images of one size together."""

    def __init__(self, model: Any, precision: str, threads: int | None = None) -> None:
        self.model = model
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY",
                                       "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}
        if HINTS[precision]:
            self.config["INFERENCE_PRECISION_HINT"] = HINTS[precision]
        self.compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def compiled_for(self, shape: tuple[int, ...]) -> Any:
        if shape in self.compiled:
            self.compiled.move_to_end(shape)
            return self.compiled[shape]
        model = self.model.clone()
        model.reshape(list(shape))
        self.compiled[shape] = core().compile_model(model, "CPU", self.config)
        if len(self.compiled) > COMPILED_SHAPES:
            self.compiled.popitem(last=False)
        return self.compiled[shape]

    def __call__(self, x: Tensor) -> Tensor:
        x = x.detach().float().cpu().contiguous()
        request = self.compiled_for(tuple(x.shape))
        return torch.from_numpy(request(x.numpy())[0].copy())
