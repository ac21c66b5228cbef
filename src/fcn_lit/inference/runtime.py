"""Inference paths: a runtime (eager PyTorch, ONNX Runtime or OpenVINO) and a precision (fp32,
bf16, fp16, or int8 by ONNX Runtime's static quantization or OpenVINO's NNCF), the CPU features
that decide between them, and ``runtime=auto``: the fastest path whose masks agree with fp32
eager, measured once per machine, model and input size and remembered (``auto_cache_file``).

``runner(net, options, device)`` turns a net into a function from a normalised (N, C, H, W) float
batch to (N, K, H, W) float32 logits, on the path ``options`` (``fcn_lit.inference.speed.SpeedOptions``)
asks for. Measured by ``benchmarks/bench_paths.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fcn_lit.experiments.scores import write_json
from fcn_lit.inference import openvino_runtime, speed
from fcn_lit.inference.formats import export_onnx
from fcn_lit.inference.speed import SpeedError
from fcn_lit.models import PRIMARY_HEAD

log = logging.getLogger(__name__)

# auto takes a path only if its masks equal fp32 eager's on at least this share of the pixels.
AGREEMENT = 0.999
# CPU flags that decide which paths are fast: native bf16 and 8-bit dot products.
FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
# The runtimes that run an exported graph, on the CPU only (these builds have no GPU provider).
EXPORTED = ("onnxruntime", "openvino")

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
    """The paths ``auto`` tries: on a GPU PyTorch in fp32, bf16 and fp16; on a CPU fp32 in each
    runtime, and bf16 in PyTorch and OpenVINO where the CPU has it natively. A precision other than
    auto keeps the paths of that precision. int8 is never tried by auto: it runs only when asked for."""
    if device.type == "cuda":
        paths = [InferencePath("torch", p) for p in ("fp32", "bf16", "fp16")]
    else:
        paths = [InferencePath(r, "fp32") for r in ("torch", *EXPORTED)]
        if speed.native_bf16(device):
            paths += [InferencePath("torch", "bf16"), InferencePath("openvino", "bf16")]
    if precision == "auto":
        return paths
    return [p for p in paths if p.precision == precision] or [InferencePath("torch", precision)]


def missing_file(key: str, path: str | Path) -> None:
    if not Path(path).is_file():
        raise SpeedFileNotFound(f"speed.{key}={str(path)!r} does not exist: give a file export.py wrote")


class SpeedFileNotFound(SpeedError, FileNotFoundError):
    """A ``speed.onnx`` / ``speed.openvino`` file that is not there."""


@contextmanager
def exported(net: nn.Module) -> Iterator[Path]:
    """``net`` (fp32) exported to ONNX in a temporary folder, removed afterwards; unoptimized: the
    runtime that loads it optimizes the graph itself."""
    with tempfile.TemporaryDirectory(prefix="fcn-lit-onnx-") as tmp:
        start = time.perf_counter()
        path = export_onnx(net.cpu(), Path(tmp) / "fp32.onnx", optimize=False)
        log.info("Exported the net to ONNX in %.0f s (speed.onnx=<file export.py wrote> skips this)",
                 time.perf_counter() - start)
        yield path


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
        raise SpeedError(f"speed.precision={precision} does not run on ONNX Runtime's CPU provider: use fp32 or int8")
    if onnx_file is not None:
        missing_file("onnx", onnx_file)
        return OnnxRunner(onnx_file)
    if precision == "int8" and calibration is None:
        raise SpeedError("speed.precision=int8 needs calibration images: set speed.calibration=<image folder or glob>")
    with exported(net) as path:
        if precision == "int8":
            start = time.perf_counter()
            path = quantize_int8(path, path.with_name("int8.onnx"), calibration())
            log.info("Quantized the net to int8 in %.0f s", time.perf_counter() - start)
        return OnnxRunner(path)


def openvino_runner(net: nn.Module, precision: str, calibration: Callable[[], list[np.ndarray]] | None = None,
                    model_file: str | Path | None = None) -> openvino_runtime.OpenVinoRunner:
    """OpenVINO on ``model_file`` (export.py's IR .xml, fp32 or int8, or an .onnx file), else on
    ``net`` exported to ONNX; ``precision=int8`` quantizes an fp32 graph with NNCF, calibrated on
    ``calibration()``. bf16 only where the CPU has it natively: elsewhere OpenVINO would quietly
    run fp32."""
    if precision not in openvino_runtime.HINTS:
        raise SpeedError(f"speed.precision={precision} does not run on OpenVINO: use fp32, bf16 or int8")
    cpu = torch.device("cpu")
    if precision == "bf16" and not speed.native_bf16(cpu):
        raise SpeedError(f"speed.precision=bf16 on OpenVINO needs a CPU with native bf16 (AVX512-BF16 or AMX), "
                         f"which {cpu_features()['model']} lacks: use speed.precision=fp32 or int8")
    if model_file is not None:
        missing_file("openvino", model_file)
        model = openvino_runtime.read(model_file)
    else:
        with exported(net) as path:
            model = openvino_runtime.read(path)
    if precision == "int8" and not openvino_runtime.is_quantized(model):
        if calibration is None:
            raise SpeedError("speed.precision=int8 needs calibration images: set speed.calibration=<image folder or glob>")
        start = time.perf_counter()
        model = openvino_runtime.quantize(model, calibration())
        log.info("Quantized the net to int8 with NNCF in %.0f s", time.perf_counter() - start)
    return openvino_runtime.OpenVinoRunner(model, precision)


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
        raise SpeedError(f"speed.runtime={path.runtime} runs on the CPU: set device=cpu, not {device}")
    if path.runtime == "onnxruntime":
        return onnx_runner(net, path.precision, calibration, options.onnx)
    return openvino_runner(net, path.precision, calibration, options.openvino or options.onnx)


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
    agree with fp32 eager PyTorch's on >= AGREEMENT of the pixels. The exported runtimes share one
    ONNX export. Logs each candidate and the pick; returns the pick, its runner and the table
    (path, ms, agreement, why)."""
    paths = candidates(device, options.precision)
    where = cpu_features() if device.type == "cpu" else torch.cuda.get_device_name(device)
    log.info("auto: choosing among %s on %s", [str(p) for p in paths], where)
    reference = torch_runner(net, replace(options, runtime="torch", precision="fp32"), device)(sample).cpu()
    table: list[dict[str, Any]] = []
    best: tuple[float, InferencePath, Runner] | None = None  # only the fastest runner so far is kept
    needs_export = options.onnx is None and any(p.runtime in EXPORTED for p in paths)
    with exported(net) if needs_export else nullcontext(options.onnx) as onnx_file:
        shared = replace(options, onnx=None if onnx_file is None else str(onnx_file))
        for path in paths:
            row: dict[str, Any] = {"path": str(path), "ms": None, "agreement": None}
            try:
                run = build(net, path, shared, device, calibration)
                row["agreement"] = agreement(run(sample).cpu(), reference)
                row["ms"] = best_time(run, sample) * 1e3
            except Exception as error:  # a path this machine cannot run is a reason to skip it, said in the log
                row["why"] = f"failed: {type(error).__name__}: {error}"
            else:
                row["why"] = "agrees" if row["agreement"] >= AGREEMENT else f"masks differ (< {AGREEMENT:.1%} agree)"
                if row["agreement"] >= AGREEMENT and (best is None or row["ms"] < best[0]):
                    best = (row["ms"], path, run)
            table.append(row)
    if best is None:
        raise RuntimeError(f"speed.runtime=auto: no path ran on this machine: {[row['why'] for row in table]}")
    _, picked, run = best
    for row in table:
        figures = "" if row["ms"] is None else f"{row['ms']:9.1f} ms, masks agree on {row['agreement']:.3%}"
        log.info("auto: %-18s %s  %s", row["path"], figures, "<- picked: the fastest that agrees" if row["path"] == str(picked)
                 else row["why"])
    return picked, run, table


def auto_cache_file() -> Path:
    """Where ``runtime=auto`` remembers its choices: $XDG_CACHE_HOME (else ~/.cache)/fcn-lit/auto-paths.json."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fcn-lit" / "auto-paths.json"


def weights_digest(net: nn.Module) -> str:
    """A hash of the net's parameters and buffers: the model part of auto's cache key."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def auto_key(digest: str, options: speed.SpeedOptions, device: torch.device, shape: tuple[int, ...]) -> str:
    """What auto's choice depends on: the machine (CPU model and features, or GPU, and threads),
    the runtimes' versions, the model's weights (``digest``: ``weights_digest``), the input shape
    and the options that shape the paths (precision, files given)."""
    import importlib.metadata

    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    facts = {
        "where": cpu_features() if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(), "device": str(device),
        "versions": {p: version(p) for p in ("torch", "onnxruntime", "openvino")},
        "weights": digest, "input": list(shape),
        "options": {k: getattr(options, k) for k in ("precision", "channels_last", "compile", "onnx", "openvino")},
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _read_cache(file: Path) -> dict[str, Any]:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return {}


def remember(file: Path, key: str, picked: InferencePath, table: list[dict[str, Any]], shape: tuple[int, ...]) -> None:
    """Add one choice to the cache file (written whole, then moved into place)."""
    choices = _read_cache(file)
    choices[key] = {"runtime": picked.runtime, "precision": picked.precision, "input": list(shape),
                    "measured": time.strftime("%Y-%m-%d %H:%M:%S"), "table": table}
    file.parent.mkdir(parents=True, exist_ok=True)
    write_json(file, choices)


def cached_export(net: nn.Module, digest: str) -> Path:
    """The net's ONNX export, kept beside auto's cache (``digest``: ``weights_digest``) so that a
    remembered exported path starts without exporting again (tens of seconds for VGG16). Written in a
    folder of its own, moved into place whole."""
    folder = auto_cache_file().parent / "onnx" / digest
    if not (folder / "fp32.onnx").is_file():
        partial = folder.with_name(f"{digest}.{os.getpid()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        start = time.perf_counter()
        export_onnx(net.cpu(), partial / "fp32.onnx", optimize=False)
        log.info("Exported the net to ONNX in %.0f s, kept for the next run in %s", time.perf_counter() - start, folder)
        try:
            partial.replace(folder)
        except OSError:  # another process (a DDP rank) put the same export there first
            shutil.rmtree(partial)
    return folder / "fp32.onnx"


def auto_runner(net: nn.Module, options: speed.SpeedOptions, device: torch.device, sample: Tensor,
                calibration: Callable[[], list[np.ndarray]] | None = None) -> Runner:
    """``choose``'s pick, measured once per key (``auto_key``) and remembered in ``auto_cache_file()``
    with the ONNX export it ran (``cached_export``); a remembered pick is built without measuring or
    exporting again. ``options.auto_cache=False`` measures every time."""
    if not options.auto_cache:
        return choose(net, options, device, sample, calibration)[1]
    digest = weights_digest(net)
    file, key = auto_cache_file(), auto_key(digest, options, device, tuple(sample.shape))
    known = _read_cache(file).get(key)
    exports = options.onnx is None and any(p.runtime in EXPORTED for p in candidates(device, options.precision))
    if known is not None:
        path = InferencePath(known["runtime"], known["precision"])
        log.info("auto: %s, measured on %s for this machine, model and input size (%s; speed.auto_cache=false "
                 "measures again)", path, known["measured"], file)
        if exports and path.runtime in EXPORTED:
            options = replace(options, onnx=str(cached_export(net, digest)))
        return build(net, path, options, device, calibration)
    if exports:
        options = replace(options, onnx=str(cached_export(net, digest)))
    picked, run, table = choose(net, options, device, sample, calibration)
    if exports and picked.runtime not in EXPORTED:
        shutil.rmtree(Path(options.onnx).parent, ignore_errors=True)  # the next run builds the PyTorch path: no export needed
    remember(file, key, picked, table, tuple(sample.shape))
    return run


def runner(net: nn.Module, options: speed.SpeedOptions, device: torch.device, sample: Callable[[], Tensor] | None = None,
           calibration: Callable[[], list[np.ndarray]] | None = None) -> Runner:
    """The runner ``options`` ask for. ``speed.precision=int8`` runs on ONNX Runtime with
    ``speed.runtime=onnxruntime``, else on OpenVINO (PyTorch's own int8 export path now lives in
    torchao, not a dependency); ``speed.runtime=auto`` measures the candidate paths on ``sample()``, once."""
    if options.precision == "int8":
        int8_runtime = "onnxruntime" if options.runtime == "onnxruntime" else "openvino"
        if options.runtime in ("torch", "auto"):
            log.info("speed.precision=int8 runs on OpenVINO (NNCF quantization)")
        return build(net, InferencePath(int8_runtime, "int8"), options, device, calibration)
    if options.runtime == "auto":
        if sample is None:
            raise ValueError("speed.runtime=auto needs a sample batch to measure the paths on")
        return auto_runner(net, options, device, sample(), calibration)
    return build(net, InferencePath(options.runtime, options.resolve(device).precision), options, device, calibration)


class RunnerModule(nn.Module):
    """``net`` as a module that runs on the path ``options`` ask for (``runner``), built on the
    first batch it sees (the one ``runtime=auto`` measures on), on that batch's device: how
    eval.py runs the net inside Lightning's test loop."""

    def __init__(self, net: nn.Module, options: speed.SpeedOptions,
                 calibration: Callable[[], list[np.ndarray]] | None = None) -> None:
        super().__init__()
        self.net, self.options, self.calibration = net, options, calibration
        self.run: Runner | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.run is None:
            with torch.inference_mode(False):  # the ONNX export traces the net, which inference tensors forbid
                self.run = runner(self.net, self.options, x.device, sample=lambda: x.clone(), calibration=self.calibration)
        return self.run(x).to(x.device)
