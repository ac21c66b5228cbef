"""`make gpu-check`: the GPU proof in minutes on any CUDA machine, no data set needed.

Synthetic VOC-sized data (500x375 JPEGs, 21 classes, written once under --workdir), full-width
FCN-8s VGG16 with pretrained=false, then:

1. the flagship training command (`train.py model=fcn8s trainer=ddp trainer.devices=<every GPU>`,
   bf16 mixed precision, the modern recipe's augmentation, crops of --crop, batch --batch per GPU)
   for --steps steps: images/s, MFU (FLOPs of a step from ``FlopCounterMode`` over the GPU's dense
   bf16 peak, ``common.GPU_BF16_PEAK_TFLOPS``), peak memory;
2. one training step eager vs torch.compile vs torch.compile with CUDA graphs ("reduce-overhead")
   on the fixed-size crops;
3. inference latency at batch 1 and 16 (500x500, the default path: bf16, channels_last);
4. bf16 training's loss curve against fp32's from the same weights on the same batches.

`--smoke` runs every step on the CPU at toy sizes (tests/test_gpu_check.py); figures are printed
and written to <workdir>/gpu_check.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from common import compose_train, gpu_peak_flops
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from fcn_lit.inference import runtime, speed
from fcn_lit.training.losses import segmentation_loss
from fcn_lit.models import build_fcn
from fcn_lit.training.optim import build_optimizer

REPO = Path(__file__).resolve().parents[1]
CLASSES = 21
SIZES = {  # what each run mode uses
    "gpu": dict(images=64, image_size=(375, 500), width=1.0, crop=512, batch=16, steps=300, infer_size=500,
                infer_batches=(1, 16), curve_steps=60, curve_batch=8, curve_crop=320),
    "smoke": dict(images=8, image_size=(30, 40), width=1 / 16, crop=32, batch=2, steps=6, infer_size=40,
                  infer_batches=(1, 2), curve_steps=6, curve_batch=2, curve_crop=32),
}
SGD = dict(name="sgd", lr=1e-3, momentum=0.9, weight_decay=5e-4)


def synthetic_folder(root: Path, count: int, size: tuple[int, int]) -> Path:
    """``count`` random-rectangle scenes of ``size`` (h, w) with their index masks, in the layout of
    conf/data/folder.yaml; written once (a marker file says it is complete)."""
    marker = root / "complete.json"
    if marker.exists() and json.loads(marker.read_text()) == {"count": count, "size": list(size)}:
        return root
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8) // 4 + 96
        mask = np.zeros(size, np.uint8)
        for _ in range(4):
            cls = int(rng.integers(1, CLASSES))
            y, x = rng.integers(0, size[0] - 4), rng.integers(0, size[1] - 4)
            h, w = rng.integers(4, size[0] // 2 + 5), rng.integers(4, size[1] // 2 + 5)
            mask[y:y + h, x:x + w] = cls
            image[y:y + h, x:x + w] = (cls * 12, 255 - cls * 12, (cls * 37) % 256)
        Image.fromarray(image).save(root / "images" / f"{i:04d}.jpg", quality=90)
        Image.fromarray(mask).save(root / "masks" / f"{i:04d}.png")
    (root / "train.txt").write_text("".join(f"{i:04d}\n" for i in range(count)))
    (root / "val.txt").write_text("".join(f"{i:04d}\n" for i in range(min(4, count))))
    (root / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(CLASSES)) + "\n")
    marker.write_text(json.dumps({"count": count, "size": list(size)}))
    return root


class StepTimer(L.Callback):
    """Wall time of every training step (GPU synchronised) and peak memory, written by the first
    process to ``path`` when training ends."""

    def __init__(self, path: str) -> None:
        self.path, self.seconds = Path(path), []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - self.start)

    def on_train_end(self, trainer, module) -> None:
        if trainer.is_global_zero:
            peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
            self.path.write_text(json.dumps({"seconds": self.seconds, "peak_memory_bytes": peak}))


def flagship_overrides(s: dict[str, Any], data: Path, devices: int, gpu: bool) -> list[str]:
    return [
        "model=fcn8s", "experiment=voc_fcn8s_modern", "data=folder", f"data.root={data}",
        f"data.class_names={data / 'class_names.txt'}",
        f"data.crop_size={s['crop']}", f"data.batch_size={s['batch']}", f"data.num_workers={8 if gpu else 0}",
        "model.backbone.pretrained=false", f"model.backbone.width={s['width']}", "model.scheduler.warmup_steps=0",
        f"trainer={'ddp' if gpu and devices > 1 else 'gpu' if gpu else 'cpu'}", f"trainer.devices={devices}",
        "trainer.precision=bf16-mixed", f"trainer.max_steps={s['steps']}", "trainer.max_epochs=-1",
        "+trainer.limit_val_batches=0", "test=false", "logger=csv", "callbacks=none", "num_pictures=0",
    ]


def train_flagship(s: dict[str, Any], data: Path, gpu: bool, workdir: Path) -> tuple[dict[str, Any], int]:
    """The flagship command's config composed as train.py composes it and run by fcn_lit.training.train.train,
    with a step timer as its one callback; returns the timer's figures and the number of processes."""
    from omegaconf import open_dict

    from fcn_lit.training.train import train

    devices = torch.cuda.device_count() if gpu else 1
    cfg = compose_train(flagship_overrides(s, data, devices, gpu), workdir / "train", workdir / "logs")
    figures = workdir / "train_steps.json"
    with open_dict(cfg):
        cfg.callbacks = {"step_timer": {"_target_": "gpu_check.StepTimer", "path": str(figures)}}
    train(cfg)
    return (json.loads(figures.read_text()) if figures.exists() else {}), devices


def training_step(net, x, y, precision: str, dev: torch.device):
    optimizer = build_optimizer(net, **SGD)
    dtype = speed.AUTOCAST_DTYPES.get(precision)

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=dtype) if dtype else nullcontext():
            logits = net(x)
        loss = segmentation_loss(logits.float(), y)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def timed(fn, dev: torch.device, repeats: int) -> float:
    fn()
    fn()  # compile / graph capture and warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def step_flops(s: dict[str, Any], dev: torch.device) -> int:
    net = build_fcn("vgg16", 8, CLASSES, width=s["width"], alignment="aligned").to(dev).train()
    x = torch.randn(s["batch"], 3, s["crop"], s["crop"], device=dev)
    y = torch.randint(0, CLASSES, (s["batch"], s["crop"], s["crop"]), device=dev)
    counter = FlopCounterMode(display=False)
    with counter:
        training_step(net, x, y, "fp32", dev)()
    return counter.get_total_flops()


def compile_table(s: dict[str, Any], dev: torch.device, compile_modes: list[str]) -> dict[str, float]:
    """One bf16 training step at the fixed crop size: eager and each torch.compile mode."""
    torch.manual_seed(0)
    x = torch.randn(s["batch"], 3, s["crop"], s["crop"], device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (s["batch"], s["crop"], s["crop"]), device=dev)
    figures = {}
    for mode in ["eager", *compile_modes]:
        net = build_fcn("vgg16", 8, CLASSES, width=s["width"], alignment="aligned").to(dev, memory_format=torch.channels_last)
        step = training_step(net if mode == "eager" else torch.compile(net, mode=mode), x, y, "bf16", dev)
        try:
            figures[mode] = timed(step, dev, 5 if dev.type == "cuda" else 1) * 1e3
        except Exception as error:  # a compiler failure is a figure too
            print(f"  {mode:<26} failed: {type(error).__name__}: {str(error)[:200]}")
            continue
        print(f"  training step, {mode:<18} {figures[mode]:9.2f} ms  x{figures['eager'] / figures[mode]:.2f}", flush=True)
    return figures


def inference_table(s: dict[str, Any], dev: torch.device) -> dict[str, float]:
    net = build_fcn("vgg16", 8, CLASSES, width=s["width"], alignment="aligned").eval()
    options = speed.SpeedOptions()
    run = runtime.torch_runner(net, options, dev)
    figures = {}
    for batch in s["infer_batches"]:
        x = torch.randn(batch, 3, s["infer_size"], s["infer_size"])
        ms = timed(lambda x=x: run(x), dev, 20 if dev.type == "cuda" else 1) * 1e3
        figures[f"batch{batch}_ms_per_image"] = ms / batch
        print(f"  inference {s['infer_size']}x{s['infer_size']}, batch {batch:>2}, {options.resolve(dev).precision}: "
              f"{ms:8.2f} ms per batch, {ms / batch:7.2f} ms per image", flush=True)
    return figures


def loss_curves(s: dict[str, Any], dev: torch.device, tolerance: float) -> dict[str, Any]:
    """fp32 and bf16 training from the same weights on the same batches; the curves (averaged over
    windows of 5 steps) must stay within ``tolerance`` of each other, relative to fp32's."""
    generator = torch.Generator().manual_seed(0)
    c, b = s["curve_crop"], s["curve_batch"]
    batches = [(torch.randn(b, 3, c, c, generator=generator).to(dev),
                torch.randint(0, CLASSES, (b, c, c), generator=generator).to(dev)) for _ in range(4)]
    torch.manual_seed(0)
    initial = build_fcn("vgg16", 8, CLASSES, width=s["width"], alignment="aligned").state_dict()
    curves = {}
    for precision in ("fp32", "bf16"):
        net = build_fcn("vgg16", 8, CLASSES, width=s["width"], alignment="aligned").to(dev)
        net.load_state_dict(initial)
        optimizer = build_optimizer(net, **SGD)
        losses = []
        for i in range(s["curve_steps"]):
            x, y = batches[i % len(batches)]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext():
                logits = net(x)
            loss = segmentation_loss(logits.float(), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        curves[precision] = losses
    window = min(5, s["curve_steps"])
    smooth = {k: np.convolve(v, np.ones(window) / window, mode="valid") for k, v in curves.items()}
    gap = float(np.max(np.abs(smooth["bf16"] - smooth["fp32"]) / np.abs(smooth["fp32"])))
    verdict = "within" if gap <= tolerance else "NOT within"
    print(f"  loss curves over {s['curve_steps']} steps: fp32 {curves['fp32'][0]:.4f} -> {curves['fp32'][-1]:.4f}, "
          f"bf16 {curves['bf16'][0]:.4f} -> {curves['bf16'][-1]:.4f}; largest gap {gap:.2%} ({verdict} {tolerance:.0%})")
    return {"fp32": curves["fp32"], "bf16": curves["bf16"], "max_relative_gap": gap, "tolerance": tolerance,
            "tracks": gap <= tolerance}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="The GPU proof: training MFU, compile, inference, bf16 vs fp32.")
    parser.add_argument("--smoke", action="store_true", help="every step on the CPU at toy sizes")
    parser.add_argument("--workdir", type=Path, default=REPO / "logs" / "gpu_check")
    parser.add_argument("--steps", type=int, help="training steps of the flagship command")
    parser.add_argument("--tolerance", type=float, default=0.05, help="bf16 vs fp32 loss curve gap allowed")
    args = parser.parse_args(argv)
    gpu = torch.cuda.is_available() and not args.smoke
    if not gpu and not args.smoke:
        raise SystemExit("make gpu-check needs a CUDA GPU (none is visible); `--smoke` runs its steps on the CPU")
    s = dict(SIZES["gpu" if gpu else "smoke"], **({"steps": args.steps} if args.steps else {}))
    dev = torch.device("cuda" if gpu else "cpu")
    data = synthetic_folder(args.workdir / "data", s["images"], s["image_size"])

    steps, devices = train_flagship(s, data, gpu, args.workdir)
    if int(os.environ.get("LOCAL_RANK", 0)) != 0:  # DDP's other processes end here
        return {}
    name = torch.cuda.get_device_name() if gpu else "CPU (smoke run)"
    print(f"\n== GPU check: {devices} x {name} | torch {torch.__version__} ==")
    warm = steps["seconds"][min(10, len(steps["seconds"]) // 2):]
    step_s = float(np.median(warm))
    flops = step_flops(s, dev)
    peak = gpu_peak_flops(name) if gpu else None
    figures: dict[str, Any] = {
        "gpu": name, "devices": devices, "steps": len(steps["seconds"]), "step_ms": step_s * 1e3,
        "images_per_s": s["batch"] * devices / step_s, "tflop_per_step_per_gpu": flops / 1e12,
        "achieved_tflops_per_gpu": flops / step_s / 1e12,
        "peak_memory_gib": steps["peak_memory_bytes"] / 2**30 if gpu else None,
        "mfu": flops / step_s / peak if peak else None,
    }
    mfu = f"{100 * figures['mfu']:.1f}% of {peak / 1e12:.0f} TFLOP/s (target >= 40% on H100)" if peak else "peak unknown"
    memory = f"{figures['peak_memory_gib']:.1f} GiB" if gpu else "n/a on CPU"
    print(f"  flagship training, {s['crop']}x{s['crop']} crops, batch {s['batch']} per GPU, bf16, {figures['steps']} steps: "
          f"{figures['images_per_s']:.1f} images/s, {figures['achieved_tflops_per_gpu']:.1f} TFLOP/s per GPU, MFU {mfu}, "
          f"peak memory {memory}")
    figures["compile"] = compile_table(s, dev, ["default", "reduce-overhead"] if gpu else [])
    figures["inference"] = inference_table(s, dev)
    per_image = figures["inference"][f"batch{s['infer_batches'][-1]}_ms_per_image"]
    print(f"  inference at batch {s['infer_batches'][-1]}: {per_image:.2f} ms per image (target < 3 ms on H100)")
    figures["loss_curves"] = loss_curves(s, dev, args.tolerance)
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "gpu_check.json").write_text(json.dumps(figures, indent=2))
    print(f"Figures written to {args.workdir / 'gpu_check.json'}")
    return figures


if __name__ == "__main__":
    main()
