"""Peak memory and time of segmenting one large image whole vs window by window (sliding-window
inference, ``fcn_lit.inference.tiling``), in one process. Prints both and their ratio.

    PYTHONPATH=src python benchmarks/bench_tiling.py [--size 3000 4000] [--window 512] [--stride 341]
        [--width 0.125] [--classes 21] [--device cpu]

Default net: the quickstart's (FCN-8s, 1/8-width VGG16 with BatchNorm, aligned), random weights.
Peak memory is the CPU RSS high-water mark above the live set (or CUDA's max_memory_allocated).
"""

from __future__ import annotations

import argparse
import time

import torch
from common import peak_since, reset_peak, sync

from fcn_lit.inference.tiling import Segmenter, Tiling
from fcn_lit.models import build_fcn


def run(net: torch.nn.Module, x: torch.Tensor) -> tuple[float, int]:
    """(seconds, peak bytes above the live set) of one pass producing the class map."""
    baseline = reset_peak(x.device)
    start = time.perf_counter()
    with torch.inference_mode():
        net(x).argmax(1)
    sync(x.device)
    return time.perf_counter() - start, peak_since(x.device, baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(3000, 4000), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--stride", type=int, default=341)
    parser.add_argument("--width", type=float, default=0.125, help="trunk width (1.0: the paper's VGG16)")
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    net = build_fcn("vgg16", 8, args.classes, width=args.width, norm="batch" if args.width < 1 else None,
                    alignment="aligned").eval().to(args.device)
    x = torch.randn(1, 3, *args.size, device=args.device)
    height, width = args.size
    logits_mib = args.classes * height * width * 4 / 2**20
    print(f"FCN-8s VGG16 x{args.width} on {height}x{width}, {args.classes} classes, {args.device} "
          f"({torch.get_num_threads()} threads); the logits alone take {logits_mib:.0f} MiB")
    tiled = Segmenter(net, Tiling(args.window, args.stride))
    results = {}
    for name, model in ((f"tiled {args.window}/{args.stride}", tiled), ("whole image", net)):
        seconds, peak = run(model, x)
        results[name] = peak
        print(f"{name:16s} {seconds:7.1f} s   peak memory above the live set {peak / 2**20:8.0f} MiB")
    whole, tiled_peak = results["whole image"], results[f"tiled {args.window}/{args.stride}"]
    print(f"whole image / tiled peak memory: {whole / tiled_peak:.1f}x")


if __name__ == "__main__":
    main()
