"""The performance suite, one command: `make bench` (or `PYTHONPATH=src python benchmarks/run.py`).

Prints, in one process: inference latency and throughput of FCN-8s VGG16 at 500x500 against a
plain-PyTorch FCN-8s, each speed option, the other trunks, one training step, peak memory, the
Lightning loop's overhead, the data pipeline's images per second per worker, metric update cost,
on a GPU the MFU of bf16 training, and every CPU inference path (PyTorch fp32/bf16, ONNX Runtime
fp32/int8, OpenVINO fp32/bf16/int8) as a share of the measured matmul peak, with int8 on the
quickstart model, the default path (runtime=auto's pick) and OpenVINO's per-layer profile of it.
`--smoke` runs everything at toy sizes; `--json FILE` writes every figure (keys in
benchmarks/README.md); `--quickstart-ckpt PATH` reuses a trained quickstart instead of training one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import bench_data
import bench_inference
import bench_loop
import bench_metrics
import bench_paths
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
    parser = argparse.ArgumentParser(description="fcn-lit's performance suite")
    parser.add_argument("--smoke", action="store_true", help="toy sizes: checks the code paths")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--quickstart-ckpt", help="a trained quickstart checkpoint (default: train one)")
    args = parser.parse_args()
    smoke = args.smoke
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
    section("Inference paths as a share of the machine's peak (benchmarks/bench_paths.py)")
    cpu = bench_paths.main(smoke, args.quickstart_ckpt)

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
    lines += [
        f"CPU default path (runtime=auto's pick) {cpu['default_path']}: {cpu['default_path_ms']:.1f} ms at "
        f"{cpu['paths']['torch_fp32']['size']}x{cpu['paths']['torch_fp32']['size']}, "
        f"{cpu['default_path_share_of_peak']:.0%} of its precision's peak (targets with native bf16: <= 150 ms, >= 70%), "
        f"masks agree with fp32 eager on {cpu['default_path_agreement']:.3%} of the quickstart's val pixels",
        f"int8 (OpenVINO, NNCF) x{cpu['int8_speedup_vs_fp32']:.2f} vs fp32 eager (target >= 2.5 on a VNNI CPU), "
        f"mean IU drop {cpu['int8_mean_iu_drop']:.2f} points (target <= 0.5)",
    ]
    for line in lines:
        print(f"  {line}")
    wall = time.perf_counter() - start
    print(f"\nTotal wall time {wall:.0f} s")
    if args.json:
        figures = {"machine": machine(), "smoke": smoke, "wall_s": wall, "cpu": cpu, "inference": inference,
                   "train": train, "loop": loop, "data": data, "metrics": metrics}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=str))
        print(f"Figures written to {args.json}")


if __name__ == "__main__":
    main()
