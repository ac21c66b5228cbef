"""Inference speed: fcn-lit's default path against the plain-PyTorch FCN-8s, each speed option on its
own, and the other trunks -- all in this one process.

Run: PYTHONPATH=src python benchmarks/bench_inference.py   (part of `make bench`)
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import torch
from baseline import PlainFCN8s
from common import Timing, device, interleaved, measure, mib, sync

from fcn_lit.inference import runtime, speed
from fcn_lit.models import build_fcn, import_torchfcn

NATIVE_BF16 = speed.native_bf16(torch.device("cpu"))
# fcn-lit's default inference path: the aligned net (no 100-pixel padding) run on the path
# runtime=auto picks, measured afresh (not from the cache of past choices).
DEFAULT_ALIGNMENT = "aligned"
DEFAULT = speed.SpeedOptions(auto_cache=False)
# PyTorch with the default options (bf16 autocast where native, channels_last, inference_mode).
TORCH_DEFAULT = replace(DEFAULT, runtime="torch")
# Full VGG16 at 500x500 takes seconds per forward on a small CPU: few repeats there.
SETTINGS = {
    "cpu": dict(size=500, warmup=1, repeats=3, batch=2, batch_repeats=1, option_size=256, option_batch=1,
                trunks=("alexnet", "googlenet", "resnet50")),
    "smoke": dict(size=64, warmup=0, repeats=1, batch=2, batch_repeats=1, option_size=64, option_batch=1,
                  trunks=("alexnet",)),
    "cuda": dict(size=500, warmup=5, repeats=20, batch=16, batch_repeats=10, option_size=500, option_batch=16,
                 trunks=("alexnet", "googlenet", "resnet50", "vgg19")),
}


def runner(net: torch.nn.Module, x: torch.Tensor, options: speed.SpeedOptions, dev: torch.device):
    x = speed.to_input(x, options, dev)

    def run() -> None:
        with speed.inference(options, dev):
            net(x)

    return run


def plain_runner(net: torch.nn.Module, x: torch.Tensor, dev: torch.device):
    """How plain PyTorch code runs a net: no_grad, contiguous fp32, eager."""
    x = x.to(dev)

    def run() -> None:
        with torch.no_grad():
            net(x)

    return run


PLAIN = speed.SpeedOptions(channels_last=False, compile=False, inference_mode=False, precision="fp32",
                           cudnn_benchmark=False)


def nets(dev: torch.device) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    """The baseline, fcn-lit's Caffe-mode net with its weights (checked equal), and the aligned net."""
    torch.manual_seed(0)
    baseline = PlainFCN8s(21).eval()
    caffe = import_torchfcn(baseline.state_dict()).eval()
    x = torch.randn(1, 3, 45, 61)
    with torch.no_grad():
        torch.testing.assert_close(caffe(x), baseline(x), atol=1e-4, rtol=1e-4)
    aligned = build_fcn("vgg16", 8, 21, alignment=DEFAULT_ALIGNMENT).eval()
    aligned.load_state_dict(caffe.state_dict())
    return baseline.to(dev), caffe.to(dev), aligned


def ms(t: float) -> str:
    return f"{t * 1e3:9.1f} ms"


def headline(dev: torch.device, s: dict[str, Any], baseline, caffe, aligned) -> dict[str, Any]:
    one = torch.randn(1, 3, s["size"], s["size"])
    many = torch.randn(s["batch"], 3, s["size"], s["size"])
    start = time.perf_counter()
    picked, default, _ = runtime.choose(aligned, DEFAULT, dev, one)
    print(f"FCN-8s VGG16, {s['size']}x{s['size']}; default path = alignment={DEFAULT_ALIGNMENT}, runtime=auto's pick: "
          f"{picked} (export and measurement of the candidates: {time.perf_counter() - start:.0f} s)")
    rows = [
        ("plain PyTorch (port: pad 100, crops)", plain_runner(baseline, one, dev),
         plain_runner(baseline, many, dev)),
        ("fcn-lit, caffe alignment, plain run", plain_runner(caffe, one, dev), None),
        ("fcn-lit default path", lambda: default(one), lambda: default(many)),
    ]
    figures = {}
    latencies = interleaved([latency for _, latency, _ in rows], dev, s["warmup"], s["repeats"])
    batched = [(label, run) for label, _, run in rows if run is not None]
    throughputs = dict(zip([label for label, _ in batched],
                           interleaved([run for _, run in batched], dev, s["warmup"], s["batch_repeats"]), strict=True))
    base = latencies[0].best
    for (label, _, _), t in zip(rows, latencies, strict=True):
        line = f"  {label:<40} latency {ms(t.best)}  x{base / t.best:4.2f}  peak {mib(t.peak_bytes)}"
        if label in throughputs:
            per_image = throughputs[label].best / s["batch"]
            line += f" | batch {s['batch']}: {1 / per_image:6.2f} img/s ({ms(per_image)}/img)"
            figures[f"{label} img/s"] = 1 / per_image
            figures[f"{label} ms/img batch"] = per_image * 1e3
        print(line, flush=True)
        figures[f"{label} latency ms"] = t.best * 1e3
        figures[f"{label} peak MiB"] = t.peak_bytes / 2**20
    figures["default speedup"] = figures["plain PyTorch (port: pad 100, crops) latency ms"] / figures[
        "fcn-lit default path latency ms"]
    figures["default path"] = str(picked)
    return figures


def options_table(dev: torch.device, s: dict[str, Any], aligned: torch.nn.Module) -> dict[str, float]:
    """Each speed option alone against aligned + no_grad + fp32 + contiguous + eager."""
    x = torch.randn(s["option_batch"], 3, s["option_size"], s["option_size"])
    reference = PLAIN
    variants: list[tuple[str, Any, speed.SpeedOptions]] = [
        ("reference: aligned, no_grad, fp32", "aligned", reference),
        ("caffe alignment (padding 100)", "caffe", reference),
        ("inference_mode", "aligned", replace(reference, inference_mode=True)),
        ("channels_last", "aligned", replace(reference, channels_last=True)),
        ("autocast bf16", "aligned", replace(reference, precision="bf16")),
    ]
    if dev.type == "cuda":
        variants += [("autocast fp16", "aligned", replace(reference, precision="fp16")),
                     ("cudnn.benchmark", "aligned", replace(reference, cudnn_benchmark=True))]
    variants += [("torch.compile (dynamic)", "aligned", replace(reference, compile=True)),
                 ("torch with the default options", "aligned", TORCH_DEFAULT)]
    print(f"Speed options, FCN-8s VGG16, batch {s['option_batch']} at {s['option_size']}x{s['option_size']}"
          f" (each alone against the reference; x = speed-up)")
    if dev.type == "cpu":
        print("  cudnn.benchmark: n/a on CPU (no GPU)")
    figures, base = {}, None
    for label, alignment, options in variants:
        net = aligned if alignment == "aligned" else build_fcn("vgg16", 8, 21, alignment="caffe").eval()
        prepared = speed.prepare(net, options, dev)
        if options.resolve(dev).precision == "bf16" and dev.type == "cpu" and not NATIVE_BF16:
            figures[label] = emulated_bf16(prepared, options, dev)
            continue
        run = runner(prepared, x, options, dev)
        note = ""
        if options.compile:
            start = time.perf_counter()
            try:
                run()
            except Exception as error:  # a compiler failure is a figure too; keep the suite going
                print(f"  {label:<40} failed: {type(error).__name__}: {str(error)[:200]}")
                continue
            sync(dev)
            note = f"  (first call incl. compile {time.perf_counter() - start:.0f} s)"
        t: Timing = measure(run, dev, 0 if options.compile else s["warmup"], s["repeats"])
        per_image = t.best / s["option_batch"]
        base = base or per_image
        figures[label] = per_image * 1e3
        print(f"  {label:<40} {ms(per_image)}/img  x{base / per_image:4.2f}{note}", flush=True)
    return figures


def emulated_bf16(net: torch.nn.Module, options: speed.SpeedOptions, dev: torch.device) -> float:
    """bf16 autocast on a CPU without native bf16 (oneDNN emulates it, tens of times slower): one
    call at 128x128 against the fp32 reference at that size, to keep the suite within minutes."""
    x = torch.randn(1, 3, 128, 128)
    reference = measure(runner(net, x, replace(options, precision="fp32"), dev), dev, 1, 1).best
    t = measure(runner(net, x, options, dev), dev, 0, 1).best
    print(f"  {'autocast bf16 (at 128x128, emulated)':<40} {ms(t)}/img  x{reference / t:4.2f}"
          f"  (fp32 at 128x128: {ms(reference)})", flush=True)
    return t * 1e3


def trunks_table(dev: torch.device, s: dict[str, Any]) -> dict[str, float]:
    """Forward latency of the other trunks' FCN-8s: Caffe mode run plainly vs aligned in PyTorch with
    the default options (runtime=auto's export and measurement per trunk would take minutes here)."""
    x = torch.randn(1, 3, s["size"], s["size"])
    print(f"Other trunks, FCN-8s, batch 1 at {s['size']}x{s['size']}: caffe alignment plain run vs aligned, "
          "torch with the default options")
    figures = {}
    for name in s["trunks"]:
        caffe = build_fcn(name, 8, 21, alignment="caffe").eval().to(dev)
        aligned = build_fcn(name, 8, 21, alignment="aligned").eval()
        aligned.load_state_dict(caffe.state_dict())
        prepared = speed.prepare(aligned, TORCH_DEFAULT, dev)
        t_caffe, t_default = (t.best for t in interleaved(
            [plain_runner(caffe, x, dev), runner(prepared, x, TORCH_DEFAULT, dev)], dev, s["warmup"], s["repeats"]))
        figures[name] = t_default * 1e3
        print(f"  {name:<10} caffe {ms(t_caffe)}  default {ms(t_default)}  x{t_caffe / t_default:4.2f}", flush=True)
    return figures


def main(smoke: bool = False) -> dict[str, dict[str, float]]:
    """``smoke``: tiny sizes, to check the code paths in seconds."""
    dev = device()
    s = SETTINGS["smoke" if smoke else dev.type]
    baseline, caffe, aligned = nets(dev)
    figures = {"headline": headline(dev, s, baseline, caffe, aligned)}
    del baseline, caffe
    figures["options"] = options_table(dev, s, aligned)
    figures["trunks"] = trunks_table(dev, s)
    return figures


if __name__ == "__main__":
    import sys

    main(smoke="--smoke" in sys.argv)
