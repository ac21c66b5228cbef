"""Inference paths: a runtime (eager PyTorch or ONNX Runtime) and a precision (fp32, bf16, fp16, or
int8 by ONNX Runtime's static quantization), the CPU features that decide between them, and
``runtime=auto``: the fastest path whose masks agree with fp32 eager.

``runner(net, options, device)`` turns a net into a function from a normalised (N, C, H, W) float
batch to (N, K, H, W) float32 logits, on the path ``options`` (``fcn_lit.inference.speed.SpeedOptions``)
asks for. Measured by ``benchmarks/bench_paths.py``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fcn_lit.inference import speed
from fcn_lit.inference.formats import export_onnx
from fcn_lit.models import PRIMARY_HEAD

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnxruntime", "auto")
# auto takes a path only if its masks equal fp32 eager's on at least this share of the pixels.
AGREEMENT = 0.999
# CPU flags that decide which paths are fast: native bf16 and 8-bit dot products.
FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")

Runner = Callable[[Tensor], Tensor]


def cpu_features() -> dict[str, Any]:
    """The CPU's model name, torch's kernel capability and the flags of ``FLAGS`` it has, from
    /proc/cpuinfo (Linux) and torch's own detection; nothing is assumed."""
    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {
        "model": model,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "flags": [f for f in FLAGS if f in flags],
        "native_bf16": speed.native_bf16(torch.device("cpu")),
        "int8_dot_product": bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags),
    }


@dataclass(frozen=True)
class InferencePath:
    """One way to run the net."""

    runtime: str
    precision: str

    def __str__(self) -> str:
        return f"{self.runtime} {self.precision}"


def candidates(device: torch.device, precision: str) -> list[InferencePath]:
    """The paths ``auto`` tries: fp32 in both runtimes, bf16/fp16 in PyTorch where the hardware has
    them natively; ONNX Runtime on a CPU only (this build has no GPU provider). int8 is never
    picked by auto: it runs only when asked for."""
    if precision != "auto":
        runtimes = ["torch"] + (["onnxruntime"] if device.type == "cpu" and precision == "fp32" else [])
        return [InferencePath(r, precision) for r in runtimes]
    if device.type == "cuda":
        return [InferencePath("torch", p) for p in ("fp32", "bf16", "fp16")]
    native = [InferencePath("torch", "bf16")] if speed.native_bf16(device) else []
    return [InferencePath("torch", "fp32"), InferencePath("onnxruntime", "fp32"), *native]


class OnnxRunner:
    """An ONNX Runtime CPU session called like the net: a float tensor in, a logits tensor out."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: Tensor) -> Tensor:
        (logits,) = self.session.run(None, {self.input: x.detach().float().cpu().contiguous().numpy()})
        return torch.from_numpy(logits)


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over a list of (1, C, H, W) arrays."""

    def __init__(self, name: str, batches: Iterable[np.ndarray]) -> None:
        self.name, self.batches = name, iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {self.name: np.ascontiguousarray(batch, dtype=np.float32)}


def quantize_int8(fp32_onnx: str | Path, out: str | Path, calibration: Iterable[np.ndarray]) -> Path:
    """Post-training static int8 quantization (ONNX Runtime's ``quantize_static``): QDQ format,
    per-channel int8 weights, uint8 activations, MinMax ranges from the ``calibration`` inputs.

    ``reduce_range`` (7-bit weights) keeps the model exact on CPUs without VNNI, whose 8-bit dot
    products saturate in 16 bits; the file then runs the same on every x86 CPU."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    model = onnx.load(str(fp32_onnx))  # with its external data, if any
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    quantize_static(model, partial, _Batches(model.graph.input[0].name, calibration),
                    quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    partial.replace(out)
    return out


def onnx_runner(net: nn.Module, precision: str, calibration: Callable[[], list[np.ndarray]] | None = None,
                onnx_file: str | Path | None = None) -> OnnxRunner:
    """ONNX Runtime on ``onnx_file`` (as export.py wrote it, fp32 or int8), else on ``net`` exported
    to ONNX (fp32, or int8 calibrated on ``calibration()``) in a temporary folder."""
    if precision not in ("fp32", "int8"):
        raise ValueError(f"speed.precision={precision} does not run on ONNX Runtime's CPU provider: use fp32 or int8")
    if onnx_file is not None:
        if not Path(onnx_file).is_file():
            raise FileNotFoundError(f"speed.onnx={str(onnx_file)!r} does not exist: give a file export.py wrote")
        return OnnxRunner(onnx_file)
    if precision == "int8" and calibration is None:
        raise ValueError("speed.precision=int8 needs calibration images: set speed.calibration=<image folder or glob>")
    with tempfile.TemporaryDirectory(prefix="fcn-lit-onnx-") as tmp:
        start = time.perf_counter()
        path = export_onnx(net.cpu(), Path(tmp) / "fp32.onnx")
        if precision == "int8":
            path = quantize_int8(path, Path(tmp) / "int8.onnx", calibration())
        log.info("Exported the net to ONNX%s in %.0f s (speed.onnx=<file from export.py> skips this)",
                 " and quantized it to int8" if precision == "int8" else "", time.perf_counter() - start)
        return OnnxRunner(path)


def torch_runner(net: nn.Module, options: speed.SpeedOptions, device: torch.device) -> Runner:
    prepared = speed.prepare(net, options, device)

    def run(x: Tensor) -> Tensor:
        with speed.inference(options, device):
            logits = prepared(speed.to_input(x, options, device))
        return (logits[PRIMARY_HEAD] if isinstance(logits, dict) else logits).float()

    return run


def build(net: nn.Module, path: InferencePath, options: speed.SpeedOptions, device: torch.device,
          calibration: Callable[[], list[np.ndarray]] | None = None) -> Runner:
    """A runner for one path."""
    if path.runtime == "torch":
        return torch_runner(net, replace(options, runtime="torch", precision=path.precision), device)
    if device.type != "cpu":
        raise ValueError(f"speed.runtime=onnxruntime runs on the CPU (onnxruntime's CPU build): set device=cpu, not {device}")
    return onnx_runner(net, path.precision, calibration, options.onnx)


def agreement(logits: Tensor, reference: Tensor) -> float:
    """Share of pixels whose predicted class equals the reference's."""
    return (logits.argmax(1) == reference.argmax(1)).double().mean().item()


def best_time(run: Runner, x: Tensor, repeats: int = 2) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def choose(net: nn.Module, options: speed.SpeedOptions, device: torch.device, sample: Tensor,
           calibration: Callable[[], list[np.ndarray]] | None = None) -> tuple[InferencePath, Runner, list[dict[str, Any]]]:
    """``runtime=auto``: time every candidate path on ``sample`` and keep the fastest whose masks
    agree with fp32 eager PyTorch's on >= AGREEMENT of the pixels. Logs each candidate and the pick;
    returns the pick, its runner and the table (path, ms, agreement, why)."""
    where = cpu_features() if device.type == "cpu" else torch.cuda.get_device_name(device)
    log.info("auto: choosing among %s on %s", [str(p) for p in candidates(device, options.precision)], where)
    reference = torch_runner(net, replace(options, runtime="torch", precision="fp32"), device)(sample).cpu()
    table, runners = [], {}
    for path in candidates(device, options.precision):
        row: dict[str, Any] = {"path": str(path), "ms": None, "agreement": None}
        try:
            run = build(net, path, options, device, calibration)
            row["agreement"] = agreement(run(sample).cpu(), reference)
            row["ms"] = best_time(run, sample) * 1e3
        except Exception as error:  # a path this machine cannot run is a reason to skip it, said in the log
            row["why"] = f"failed: {type(error).__name__}: {error}"
        else:
            runners[path] = run
            row["why"] = "agrees" if row["agreement"] >= AGREEMENT else f"masks differ (< {AGREEMENT:.1%} agree)"
        table.append(row)
    eligible = [(row["ms"], path) for path, row in zip(candidates(device, options.precision), table, strict=True)
                if path in runners and row["agreement"] >= AGREEMENT]
    if not eligible:
        raise RuntimeError(f"speed.runtime=auto: no path ran on this machine: {[row['why'] for row in table]}")
    picked = min(eligible)[1]
    for row in table:
        figures = "" if row["ms"] is None else f"{row['ms']:9.1f} ms, masks agree on {row['agreement']:.3%}"
        log.info("auto: %-18s %s  %s", row["path"], figures, "<- picked: the fastest that agrees" if row["path"] == str(picked)
                 else row["why"])
    return picked, runners[picked], table


def runner(net: nn.Module, options: speed.SpeedOptions, device: torch.device, sample: Callable[[], Tensor] | None = None,
           calibration: Callable[[], list[np.ndarray]] | None = None) -> Runner:
    """The runner ``options`` ask for. ``precision=int8`` runs on ONNX Runtime whatever the runtime
    (PyTorch's own int8 export path now lives in torchao, not a dependency); ``runtime=auto``
    measures the candidate paths on ``sample()``."""
    if options.precision == "int8":
        if options.runtime != "onnxruntime":
            log.info("speed.precision=int8 runs on ONNX Runtime (static quantization)")
        return build(net, InferencePath("onnxruntime", "int8"), options, device, calibration)
    if options.runtime == "auto":
        if sample is None:
            raise ValueError("speed.runtime=auto needs a sample batch to measure the paths on")
        return choose(net, options, device, sample(), calibration)[1]
    return build(net, InferencePath(options.runtime, options.resolve(device).precision), options, device, calibration)
