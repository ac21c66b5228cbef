"""One training step (forward + backward + SGD) of FCN-8s VGG16: fcn-lit against the plain-PyTorch
baseline, peak memory, and on a GPU the model FLOPs utilisation of bf16 training.

Run: PYTHONPATH=src python benchmarks/bench_train.py   (part of `make bench`)
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import torch
from baseline import PlainFCN8s
from common import device, gpu_peak_flops, interleaved, mib
from torch.utils.flop_counter import FlopCounterMode

from fcn_lit.inference import speed
from fcn_lit.training.losses import segmentation_loss
from fcn_lit.models import build_fcn
from fcn_lit.training.optim import build_optimizer

# CPU: batch 1 at the modern recipe's 320 crop (a 500x500 step takes minutes on 2 cores);
# GPU: the bf16 target, 512x512.
SETTINGS = {
    "cpu": dict(size=320, batch=1, warmup=1, repeats=2),
    "smoke": dict(size=64, batch=1, warmup=0, repeats=1),
    "cuda": dict(size=512, batch=16, warmup=3, repeats=10),
}
SGD = dict(name="sgd", lr=1e-10, momentum=0.99, weight_decay=5e-4, bias_lr_mult=2.0)


def step_fn(net, optimizer, loss_fn, x, y, precision: str, dev: torch.device):
    dtype = speed.AUTOCAST_DTYPES.get(precision)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=dtype) if dtype else nullcontext():
            logits = net(x)
        loss_fn(logits.float(), y).backward()
        optimizer.step()

    return step


def count_flops(step) -> int:
    """FLOPs of one step as torch counts them (matmuls and convolutions, forward and backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def main(smoke: bool = False) -> dict[str, float]:
    dev = device()
    s = SETTINGS["smoke" if smoke else dev.type]
    torch.manual_seed(0)
    x = torch.randn(s["batch"], 3, s["size"], s["size"], device=dev)
    y = torch.randint(0, 21, (s["batch"], s["size"], s["size"]), device=dev)

    baseline = PlainFCN8s(21).to(dev).train()
    plain = step_fn(baseline, torch.optim.SGD(baseline.parameters(), lr=1e-10, momentum=0.99, weight_decay=5e-4),
                    lambda logits, t: torch.nn.functional.cross_entropy(logits, t, ignore_index=255), x, y, "fp32", dev)
    options = speed.SpeedOptions(inference_mode=False).resolve(dev)
    net = speed.prepare(build_fcn("vgg16", 8, 21, alignment="aligned").train(), options, dev)
    ours = step_fn(net, build_optimizer(net, **SGD), segmentation_loss, speed.to_input(x, options, dev), y,
                   options.precision, dev)

    rows = [("plain PyTorch (port, fp32)", plain), ("fcn-lit", ours)]
    if dev.type == "cuda":  # compile pays off over a long run; on a CPU its compile time dwarfs the bench
        compiled = speed.prepare(net, replace(options, compile=True), dev)
        rows.append(("fcn-lit + torch.compile", step_fn(compiled, build_optimizer(net, **SGD), segmentation_loss,
                                                        speed.to_input(x, options, dev), y, options.precision, dev)))
    print(f"Training step, FCN-8s VGG16, batch {s['batch']} at {s['size']}x{s['size']} (forward + backward + SGD); "
          f"fcn-lit = aligned, channels_last={options.channels_last}, precision={options.precision}")
    figures: dict[str, Any] = {}
    timings = interleaved([step for _, step in rows], dev, s["warmup"], s["repeats"])
    base = timings[0].best
    for (label, _), t in zip(rows, timings, strict=True):
        figures[f"{label} step ms"] = t.best * 1e3
        figures[f"{label} peak MiB"] = t.peak_bytes / 2**20
        print(f"  {label:<28} {t.best * 1e3:9.1f} ms/step  x{base / t.best:4.2f}  peak {mib(t.peak_bytes)}", flush=True)
    del baseline, plain

    if dev.type != "cuda":
        print("  MFU (bf16 training): no GPU")
        return figures
    flops = count_flops(ours)
    peak = gpu_peak_flops(torch.cuda.get_device_name())
    best_ms = min(v for k, v in figures.items() if k.startswith("fcn-lit") and k.endswith("step ms"))
    achieved = flops / (best_ms / 1e3)
    figures["TFLOP/s"] = achieved / 1e12
    if peak is None:
        print(f"  {flops / 1e12:.2f} TFLOP per step, {achieved / 1e12:.0f} TFLOP/s; peak unknown for "
              f"{torch.cuda.get_device_name()} (add it to common.GPU_BF16_PEAK_TFLOPS)")
    else:
        figures["MFU"] = achieved / peak
        print(f"  MFU: {flops / 1e12:.2f} TFLOP per step / {best_ms:.1f} ms = "
              f"{achieved / 1e12:.0f} TFLOP/s = {100 * achieved / peak:.1f}% of {peak / 1e12:.0f} TFLOP/s bf16 peak")
    return figures


if __name__ == "__main__":
    import sys

    main(smoke="--smoke" in sys.argv)
