"""Timing, peak memory and machine facts shared by the benchmark scripts."""

from __future__ import annotations

import ctypes
import datetime
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, matched by name.
GPU_BF16_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 80GB HBM3": 989.0,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 756.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
}


@dataclass
class Timing:
    seconds: list[float]
    peak_bytes: int

    @property
    def best(self) -> float:
        return min(self.seconds)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _status_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1))


def reset_peak(dev: torch.device) -> int:
    """Start a peak-memory window; returns the baseline in bytes."""
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    try:  # hand freed heap back to the OS, so that the RSS high-water mark starts from live memory
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)
    return _status_kib("VmRSS") * 1024


def peak_since(dev: torch.device, baseline: int) -> int:
    """Bytes above ``baseline`` at the peak: CUDA max_memory_allocated, or the CPU RSS high-water mark."""
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated() - baseline
    return _status_kib("VmHWM") * 1024 - baseline


def measure(fn: Callable[[], object], dev: torch.device, warmup: int, repeats: int) -> Timing:
    """Wall time of ``repeats`` calls after ``warmup`` ones; peak memory over all of them."""
    baseline = reset_peak(dev)
    for _ in range(warmup):
        fn()
    sync(dev)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(dev)
        seconds.append(time.perf_counter() - start)
    return Timing(seconds, peak_since(dev, baseline))


def interleaved(fns: list[Callable[[], object]], dev: torch.device, warmup: int, repeats: int) -> list[Timing]:
    """``measure`` for several functions, their timed calls taken in turns so that load changes on
    a shared machine hit all of them alike; peak memory over each one's warm-up calls."""
    peaks = []
    for fn in fns:
        baseline = reset_peak(dev)
        for _ in range(warmup):
            fn()
        sync(dev)
        peaks.append(peak_since(dev, baseline))
    seconds: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, times in zip(fns, seconds, strict=True):
            start = time.perf_counter()
            fn()
            sync(dev)
            times.append(time.perf_counter() - start)
    return [Timing(t, p) for t, p in zip(seconds, peaks, strict=True)]


def gpu_peak_flops(name: str) -> float | None:
    """The GPU's dense bf16 peak in FLOP/s, by the longest table name found in ``name``."""
    matches = [key for key in GPU_BF16_PEAK_TFLOPS if key.lower() in name.lower()]
    return GPU_BF16_PEAK_TFLOPS[max(matches, key=len)] * 1e12 if matches else None


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"{datetime.date.today()} | {cpu}, {torch.get_num_threads()} torch threads "
            f"(capability {torch.backends.cpu.get_cpu_capability()}) | {gpu} | torch {torch.__version__}")


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def compose_train(overrides: list[str], output_dir: Path, log_dir: Path):
    """The config `python train.py <overrides>` composes, with its run directory set to ``output_dir``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(log_dir)
        del cfg.hydra
    return cfg
