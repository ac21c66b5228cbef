"""Every CPU inference path of FCN-8s VGG16 as a share of this machine's limit, and int8 on the
quickstart model.

1. The matmul peak, measured: fp32 and bf16 ``torch.mm`` (oneDNN/MKL), int8 ONNX Runtime
   ``MatMulInteger`` (uint8 x int8, the kernels its int8 convolutions use).
2. Each path at 500x500, batch 1, timed calls interleaved: PyTorch fp32/bf16, ONNX Runtime
   fp32/int8, OpenVINO fp32/bf16/int8: ms, GFLOP/s (FLOPs counted by ``FlopCounterMode`` on each
   net at its own input size) and the share of its precision's peak.
3. The quickstart model (trained here unless ``--quickstart-ckpt``): val mean IU in fp32 eager and
   in int8 (both runtimes), the share of val pixels on which each ``runtime=auto`` candidate's masks
   agree with fp32 eager, and auto's pick.
4. The default path: auto's rule on these figures (the fastest candidate at 500x500 whose masks
   agree with fp32 eager on >= 99.9% of the quickstart's val pixels), its ms and share of its peak;
   with ``--profile``, OpenVINO's per-layer profile of it (where the time goes).

Run: PYTHONPATH=src python benchmarks/bench_paths.py [--smoke] [--quickstart-ckpt PATH]
(part of `make bench`).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from baseline import PlainFCN8s
from common import compose_train, interleaved
from torch.utils.flop_counter import FlopCounterMode

from fcn_lit.inference import formats, openvino_runtime, runtime, speed
from fcn_lit.models import build_fcn, import_torchfcn

CPU = torch.device("cpu")
SETTINGS = {
    "cpu": dict(size=500, warmup=1, repeats=3, peak_n=2048, bf16_size=128, calibration=8),
    "smoke": dict(size=64, warmup=0, repeats=1, peak_n=256, bf16_size=64, calibration=2),
}
QUICKSTART = ["experiment=quickstart", "logger=csv", "num_pictures=0"]
QUICKSTART_SMOKE = ["data.generator.num_train=16", "data.generator.num_val=4", "data.generator.size=48",
                    "trainer.max_epochs=1", "model/backbone=vgg16_tiny"]


def best_seconds(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peaks(n: int) -> dict[str, float]:
    """GFLOP/s of an n x n x n matmul: fp32, bf16 (torch) and uint8 x int8 -> int32 (ONNX Runtime)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    peaks = {}
    # Emulated bf16 (no AVX512-BF16/AMX) runs at a few GFLOP/s: a smaller matmul keeps it to seconds.
    sizes = {"fp32": n, "bf16": n if speed.native_bf16(CPU) else min(n, 512)}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        m = sizes[name]
        a, b = torch.randn(m, m, dtype=dtype), torch.randn(m, m, dtype=dtype)
        peaks[name] = 2 * m**3 / best_seconds(lambda a=a, b=b: torch.mm(a, b)) / 1e9
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])], "int8_mm",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n]),
         helper.make_tensor_value_info("b", TensorProto.INT8, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(onnx.shape_inference.infer_shapes(model).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"a": rng.integers(0, 255, (n, n), dtype=np.uint8), "b": rng.integers(-127, 127, (n, n), dtype=np.int8)}
    peaks["int8"] = 2 * n**3 / best_seconds(lambda: session.run(None, feeds)) / 1e9
    return peaks


def flops(net: torch.nn.Module, size: int) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.randn(1, 3, size, size))
    return counter.get_total_flops()


def paths(s: dict[str, Any], peaks: dict[str, float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each path's ms, GFLOP/s and share of peak; FCN-8s VGG16, random weights (speed only). Also
    returns the OpenVINO runners, by precision, for the profile."""
    torch.manual_seed(0)
    baseline = PlainFCN8s(21).eval()
    caffe = import_torchfcn(baseline.state_dict()).eval()
    aligned = build_fcn("vgg16", 8, 21, alignment="aligned").eval()
    aligned.load_state_dict(caffe.state_dict())
    size, x = s["size"], torch.randn(1, 3, s["size"], s["size"])
    eager = speed.SpeedOptions(precision="fp32")
    calibration = [torch.randn(1, 3, size, size).numpy() for _ in range(s["calibration"])]
    start = time.perf_counter()
    native = speed.native_bf16(CPU)
    with tempfile.TemporaryDirectory() as tmp:
        fp32_onnx = formats.export_onnx(aligned, Path(tmp) / "fcn8s.onnx")
        int8_onnx = runtime.quantize_int8(fp32_onnx, Path(tmp) / "fcn8s.int8.onnx", calibration)
        onnx_fp32, onnx_int8 = runtime.OnnxRunner(fp32_onnx), runtime.OnnxRunner(int8_onnx)
        vino = {precision: runtime.openvino_runner(aligned, precision, lambda: calibration, fp32_onnx)
                for precision in ("fp32", *(["bf16"] if native else []), "int8")}
    print(f"  (ONNX export + int8 quantization (ONNX Runtime, NNCF) of the 500x500 net: {time.perf_counter() - start:.0f} s)")

    def plain(net):
        def run():
            with torch.no_grad():
                net(x)
        return run

    aligned_flops = flops(aligned, size)
    rows = [  # label, key, run, precision, FLOPs per call
        ("pytorch-fcn's own FCN8s, fp32", "pytorch_fcn_fp32", plain(baseline), "fp32", flops(baseline, size)),
        ("fcn-lit, Caffe mode, fp32", "caffe_fp32", plain(caffe), "fp32", flops(caffe, size)),
        ("fcn-lit, aligned, channels_last, fp32", "torch_fp32", lambda r=runtime.torch_runner(aligned, eager, CPU): r(x),
         "fp32", aligned_flops),
        ("ONNX Runtime, aligned export, fp32", "onnxruntime_fp32", lambda: onnx_fp32(x), "fp32", aligned_flops),
        ("ONNX Runtime, aligned export, int8", "onnxruntime_int8", lambda: onnx_int8(x), "int8", aligned_flops),
    ]
    rows += [(f"OpenVINO, aligned export, {precision}{' (NNCF)' if precision == 'int8' else ''}", f"openvino_{precision}",
              lambda run=run: run(x), precision, aligned_flops) for precision, run in vino.items()]
    if not native:
        print("  OpenVINO bf16: not run, this CPU has no native bf16 (speed.precision=bf16 on OpenVINO is refused here)")
    bf16 = runtime.torch_runner(aligned, replace(eager, precision="bf16"), CPU)
    bf16_size = size if native else s["bf16_size"]  # emulated bf16 is tens of times slower: a smaller image
    small = torch.randn(1, 3, bf16_size, bf16_size)
    rows.append((f"fcn-lit, aligned, channels_last, bf16 autocast{'' if native else f' ({bf16_size}x{bf16_size}, emulated)'}",
                 "torch_bf16", lambda: bf16(small), "bf16", flops(aligned, bf16_size)))
    timings = interleaved([row[2] for row in rows], CPU, s["warmup"], s["repeats"])
    print(f"FCN-8s VGG16, {size}x{size}, batch 1, interleaved, best of {s['repeats']}; share = GFLOP/s / matmul peak "
          "of the path's precision")
    print(f"  {'path':<52} {'ms':>9} {'GFLOP/s':>8} {'share':>6}")
    figures: dict[str, Any] = {}
    for (label, key, _, precision, count), t in zip(rows, timings, strict=True):
        gflops = count / t.best / 1e9
        share = gflops / peaks[precision]
        figures[key] = {"ms": t.best * 1e3, "gflops": gflops, "share_of_peak": share, "gflop": count / 1e9,
                        "precision": precision, "size": bf16_size if key == "torch_bf16" else size}
        print(f"  {label:<52} {t.best * 1e3:9.1f} {gflops:8.1f} {share:6.1%}", flush=True)
    return figures, vino


def quickstart_checkpoint(smoke: bool, workdir: Path) -> Path:
    """Train the quickstart (``make quickstart``'s config) into ``workdir``; its best checkpoint."""
    from fcn_lit.training.train import train

    overrides = QUICKSTART + (QUICKSTART_SMOKE + [f"paths.data_dir={workdir / 'data'}"] if smoke else [])
    cfg = compose_train(overrides, workdir / "run", workdir / "logs")
    start = time.perf_counter()
    result = train(cfg)
    print(f"  trained the quickstart in {time.perf_counter() - start:.0f} s")
    return Path(result["checkpoint"])


def quickstart(smoke: bool, ckpt: str | None) -> dict[str, Any]:
    """fp32 eager vs int8 val mean IU, and each auto candidate's mask agreement, on the quickstart's val split."""
    import contextlib
    import io

    from hydra.utils import instantiate

    from fcn_lit.metrics import SegmentationMetrics
    from fcn_lit.inference.predict import _run_data_config, calibration_inputs, load_predictor

    with tempfile.TemporaryDirectory() as tmp:
        if ckpt is None:
            with contextlib.redirect_stdout(io.StringIO()):
                ckpt = str(quickstart_checkpoint(smoke, Path(tmp)))
        predictor = load_predictor(ckpt)
        datamodule = instantiate(_run_data_config(Path(ckpt)))
        datamodule.prepare_data()
        datamodule.setup("validate")
        val = [datamodule.val_dataset[i] for i in range(len(datamodule.val_dataset))]
        x = torch.stack([predictor.normalization(image) for image, _ in val])
        target = torch.stack([torch.as_tensor(np.asarray(t), dtype=torch.long) for _, t in val])
        calibration = calibration_inputs(ckpt, predictor.normalization, None, 32)
        net, classes = predictor.net, len(predictor.class_names)
        reference = runtime.torch_runner(net, speed.SpeedOptions(precision="fp32"), CPU)(x)
        with tempfile.TemporaryDirectory() as export_dir:
            fp32_onnx = formats.export_onnx(net, Path(export_dir) / "q.onnx")
            options = speed.SpeedOptions(runtime="auto", onnx=str(fp32_onnx))
            runners = {str(p): runtime.build(net, p, options, CPU) for p in runtime.candidates(CPU, "auto")}
            runners["onnxruntime int8"] = runtime.OnnxRunner(
                runtime.quantize_int8(fp32_onnx, Path(export_dir) / "q.int8.onnx", calibration))
            runners["openvino int8"] = runtime.openvino_runner(net, "int8", lambda: calibration, fp32_onnx)
            picked, _, table = runtime.choose(net, options, CPU, x)

    def mean_iu(logits: torch.Tensor) -> float:
        metric = SegmentationMetrics(classes)
        metric.update(logits, target)
        return float(metric.compute()["mean_iu"])

    figures: dict[str, Any] = {"val_images": len(val), "val_pixels": int(target.numel()), "agreement": {}, "mean_iu": {}}
    print(f"Quickstart model ({ckpt}), val split: {len(val)} images")
    for name, run in runners.items():
        logits = run(x)
        figures["agreement"][name] = runtime.agreement(logits, reference)
        figures["mean_iu"][name] = 100 * mean_iu(logits)
        print(f"  {name:<18} masks agree with fp32 eager on {figures['agreement'][name]:8.3%} of the val pixels; "
              f"mean IU {figures['mean_iu'][name]:.2f}")
    figures["mean_iu_fp32"] = 100 * mean_iu(reference)
    # int8 runs on OpenVINO unless speed.runtime=onnxruntime (fcn_lit.inference.runtime.runner)
    figures["mean_iu_int8"] = figures["mean_iu"]["openvino int8"]
    figures["int8_mean_iu_drop"] = figures["mean_iu_fp32"] - figures["mean_iu_int8"]
    figures["onnxruntime_int8_mean_iu_drop"] = figures["mean_iu_fp32"] - figures["mean_iu"]["onnxruntime int8"]
    for row in table:
        figures_ = "" if row["ms"] is None else f"{row['ms']:9.1f} ms on the val split, agreement {row['agreement']:.3%}"
        print(f"  auto candidate {row['path']:<18} {figures_}  {'<- picked' if row['path'] == str(picked) else row['why']}")
    figures["auto_pick"] = str(picked)
    figures["auto_table"] = table
    print(f"  int8 mean IU drop: OpenVINO (NNCF) {figures['int8_mean_iu_drop']:.2f} points, ONNX Runtime "
          f"{figures['onnxruntime_int8_mean_iu_drop']:.2f} points (target <= 0.5); "
          f"runtime=auto picks {picked} (timed on the whole val split)")
    return figures


def main(smoke: bool = False, quickstart_ckpt: str | None = None, profile: bool = True) -> dict[str, Any]:
    s = SETTINGS["smoke" if smoke else "cpu"]
    features = runtime.cpu_features()
    print(f"CPU: {features['model']}; torch kernels {features['capability']}; flags {' '.join(features['flags'])}; "
          f"native bf16: {features['native_bf16']}; int8 dot product (VNNI/AMX): {features['int8_dot_product']}; "
          f"{torch.get_num_threads()} threads")
    # On a shared machine the load changes: the peak is the best of a measurement before and after the paths.
    peaks = matmul_peaks(s["peak_n"])
    print(f"Matmul peak ({s['peak_n']}^3, before the paths): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))
    figures: dict[str, Any] = {"cpu": features, "matmul_peak_gflops": peaks}
    figures["paths"], vino = paths(s, peaks)
    after = matmul_peaks(s["peak_n"])
    print("Matmul peak (after): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in after.items()))
    if any(after[k] > peaks[k] for k in peaks):
        peaks.update({k: max(v, after[k]) for k, v in peaks.items()})
        print("  shares of the peak, with the best of both peaks:")
        for key, row in figures["paths"].items():
            row["share_of_peak"] = row["gflops"] / peaks[row["precision"]]
            print(f"  {key:<20} {row['gflops']:8.1f} GFLOP/s {row['share_of_peak']:6.1%}")
    figures["quickstart"] = quickstart(smoke, quickstart_ckpt)
    p = figures["paths"]
    default = default_path(p, figures["quickstart"]["agreement"])
    row = p[default.replace(" ", "_")]
    figures["default_path"] = default
    figures["default_path_ms"] = row["ms"]
    figures["default_path_share_of_peak"] = row["share_of_peak"]
    figures["default_path_agreement"] = figures["quickstart"]["agreement"][default]
    figures["int8_speedup_vs_fp32"] = p["torch_fp32"]["ms"] / p["openvino_int8"]["ms"]
    figures["onnxruntime_int8_speedup_vs_fp32"] = p["torch_fp32"]["ms"] / p["onnxruntime_int8"]["ms"]
    figures["int8_mean_iu_drop"] = figures["quickstart"]["int8_mean_iu_drop"]
    print(f"  default path (runtime=auto's rule on these figures): {default}, {row['ms']:.1f} ms at {row['size']}x{row['size']}, "
          f"{row['share_of_peak']:.0%} of the {row['precision']} peak (targets on a CPU with native bf16: <= 150 ms, >= 70%); "
          f"masks agree with fp32 eager on {figures['default_path_agreement']:.3%} of the quickstart's val pixels")
    print(f"  int8 vs fp32 eager: OpenVINO x{figures['int8_speedup_vs_fp32']:.2f}, ONNX Runtime "
          f"x{figures['onnxruntime_int8_speedup_vs_fp32']:.2f} (target >= 2.5 on a VNNI CPU; this CPU has "
          f"{'VNNI' if features['int8_dot_product'] else 'no VNNI'})")
    if profile and default.startswith("openvino"):
        figures["default_path_profile"] = openvino_profile(vino[default.split()[1]], s["size"])
    return figures


def default_path(paths_: dict[str, Any], agreement: dict[str, float]) -> str:
    """``runtime=auto``'s rule on the benchmark's figures: the fastest candidate at 500x500 whose masks
    agree with fp32 eager on >= AGREEMENT of the quickstart's val pixels."""
    eligible = [(paths_[str(p).replace(" ", "_")]["ms"], str(p)) for p in runtime.candidates(CPU, "auto")
                if agreement.get(str(p), 0.0) >= runtime.AGREEMENT]
    return min(eligible)[1]


def openvino_profile(run: openvino_runtime.OpenVinoRunner, size: int, top: int = 12) -> dict[str, Any]:
    """OpenVINO's own per-layer profile (PERF_COUNT) of ``run``'s net at ``size``, batch 1: the time of
    each layer kind and of the slowest layers, as OpenVINO ran them (kernel names in exec_type)."""
    model = run.model.clone()
    model.reshape([1, 3, size, size])
    request = openvino_runtime.core().compile_model(model, "CPU", {**run.config, "PERF_COUNT": True}).create_infer_request()
    x = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
    for _ in range(3):
        request.infer({0: x})
    layers = [(info.real_time.total_seconds() * 1e3, info.node_name, info.node_type, info.exec_type)
              for info in request.profiling_info if info.real_time.total_seconds() > 0]
    total = sum(ms for ms, *_ in layers)
    kinds: dict[str, float] = {}
    for ms, _, kind, _ in layers:
        kinds[kind] = kinds.get(kind, 0.0) + ms
    print(f"OpenVINO per-layer profile (PERF_COUNT) of the default path, {size}x{size}, batch 1: {total:.1f} ms in layers")
    for kind, ms in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<24} {ms:8.1f} ms {ms / total:6.1%}")
    print(f"  slowest {top} layers:")
    for ms, name, kind, exec_type in sorted(layers, reverse=True)[:top]:
        print(f"  {ms:8.1f} ms  {kind:<14} {exec_type:<28} {name}")
    return {"total_ms": total, "by_kind_ms": kinds,
            "slowest": [{"ms": ms, "name": name, "kind": kind, "exec_type": exec_type}
                        for ms, name, kind, exec_type in sorted(layers, reverse=True)[:top]]}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--quickstart-ckpt")
    parser.add_argument("--no-profile", action="store_true", help="skip OpenVINO's per-layer profile of the default path")
    args = parser.parse_args()
    main(args.smoke, args.quickstart_ckpt, not args.no_profile)
