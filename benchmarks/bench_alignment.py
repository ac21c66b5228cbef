"""Forward time of FCN-8s VGG16 at 500x500: Caffe alignment (conv1 padding 100) vs the aligned
mode (only the padding alignment needs), in one process. Prints both times and their ratio.

    PYTHONPATH=src python benchmarks/bench_alignment.py [--size 500] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from fcn_lit.models import build_fcn


def forward_seconds(net: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median forward time after one warm-up pass."""
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            if x.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            net(x)
            if x.device.type == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    x = torch.randn(1, 3, args.size, args.size, device=args.device)
    seconds = {}
    for alignment in ("caffe", "aligned"):
        net = build_fcn("vgg16", 8, 21, width=args.width, alignment=alignment).eval().to(args.device)
        seconds[alignment] = forward_seconds(net, x, args.repeats)
        print(f"{alignment:8s} FCN-8s VGG16 {args.size}x{args.size} on {args.device}: {seconds[alignment] * 1e3:8.1f} ms")
        del net
    print(f"speed-up of aligned over caffe: {seconds['caffe'] / seconds['aligned']:.2f}x")


if __name__ == "__main__":
    main()
