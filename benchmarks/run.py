"""The performance suite, one command: `make bench` (or `PYTHONPATH=src python benchmarks/run.py`).

Prints, in one process: inference latency and throughput of FCN-8s VGG16 at 500x500 against a
plain-PyTorch FCN-8s, each speed option, the other trunks, one training step, peak memory, the
Lightning loop's overhead, the data pipeline's images per second per worker, metric update cost,
and on a GPU the MFU of bf16 training. `--smoke` runs everything at toy sizes in about a minute.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time

import bench_data
import bench_inference
import bench_loop
import bench_metrics
import bench_train
from common import device, machine


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 76 - len(title)), flush=True)


def metrics_update() -> dict[str, float]:
    """bench_metrics.py's table, echoed, with its ratio for the summary."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bench_metrics.main()
    print(out.getvalue(), end="")
    row = next(line for line in out.getvalue().splitlines() if line.startswith("update(indices)"))
    return {"update(indices) ms": float(row.split()[1]), "ratio": float(row.split()[-1])}


def main() -> None:
    smoke = "--smoke" in sys.argv
    start = time.perf_counter()
    print(f"fcn-lit benchmarks | {machine()}")
    section("Inference")
    inference = bench_inference.main(smoke)
    section("Training step")
    train = bench_train.main(smoke)
    section("Lightning loop")
    loop = bench_loop.main(smoke)
    section("Data pipeline")
    data = bench_data.main(smoke)
    section("Metric update (benchmarks/bench_metrics.py)")
    metrics = metrics_update()

    h = inference["headline"]
    section("Summary (targets from issue 7)")
    gpu = device().type == "cuda"
    lines = [
        f"default inference path vs plain PyTorch, 500x500 batch 1: x{h['default speedup']:.2f} (target >= 1.3 on CPU)",
        f"default path latency {h['fcn-lit default path latency ms']:.1f} ms; batch throughput "
        f"{h['fcn-lit default path img/s']:.2f} img/s ({h['fcn-lit default path ms/img batch']:.2f} ms/img"
        + (", target < 3 ms at batch 16 on H100/H200)" if gpu else ")"),
        f"peak memory of a forward: plain {h['plain PyTorch (port: pad 100, crops) peak MiB']:.0f} MiB, "
        f"default {h['fcn-lit default path peak MiB']:.0f} MiB",
        f"training step: plain {train['plain PyTorch (port, fp32) step ms']:.0f} ms, fcn-lit "
        f"{train['fcn-lit step ms']:.0f} ms (x{train['plain PyTorch (port, fp32) step ms'] / train['fcn-lit step ms']:.2f}); "
        f"peak {train['plain PyTorch (port, fp32) peak MiB']:.0f} vs {train['fcn-lit peak MiB']:.0f} MiB",
        f"Lightning loop overhead: {loop['overhead %']:+.1f}% (target <= 5%)",
        f"data pipeline, modern augmentation: {data['modern']:.0f} images/s per worker (target >= 150)",
        f"metric update from class indices: {metrics['update(indices) ms']:.1f} ms per 8x500x500 batch "
        f"(x{metrics['ratio']:.2f} of score.py's numpy)",
        "MFU of bf16 training: " + (f"{100 * train['MFU']:.1f}% (target >= 40%)" if "MFU" in train else "no GPU"),
    ]
    for line in lines:
        print(f"  {line}")
    print(f"\nTotal wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
