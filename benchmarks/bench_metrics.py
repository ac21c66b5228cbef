"""Cost of SegmentationMetrics.update against score.py's numpy fast_hist, in the same process.

Run: PYTHONPATH=src python benchmarks/bench_metrics.py   (a 21-class batch of 8 at 500x500; torch
runs on the GPU when there is one, numpy on the CPU; best of 10 runs each)
"""

import time

import numpy as np
import torch

from fcn_lit.metrics import SegmentationMetrics

N_CLASSES, BATCH, SIZE, REPEATS = 21, 8, 500, 10


def fast_hist(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    k = (a >= 0) & (a < n)
    return np.bincount(n * a[k].astype(int) + b[k], minlength=n**2).reshape(n, n)


def score_py_update(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The release's loop: argmax per image, then fast_hist."""
    hist = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    for scores, label in zip(logits, target, strict=True):
        hist += fast_hist(label.flatten(), scores.argmax(0).flatten(), N_CLASSES)
    return hist


DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def best_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    torch.manual_seed(0)
    logits = torch.randn(BATCH, N_CLASSES, SIZE, SIZE)
    target = torch.randint(0, N_CLASSES, (BATCH, SIZE, SIZE))
    target[torch.rand(target.shape) < 0.05] = 255
    logits_np, target_np = logits.numpy(), target.numpy()
    logits, target = logits.to(DEVICE), target.to(DEVICE)
    indices = logits.argmax(1)

    metric = SegmentationMetrics(N_CLASSES).to(DEVICE)
    metric.update(logits, target)
    assert np.array_equal(metric.confmat.cpu().numpy(), score_py_update(logits_np, target_np))

    baseline = best_of(lambda: score_py_update(logits_np, target_np))
    from_logits = best_of(lambda: metric.update(logits, target))
    from_indices = best_of(lambda: metric.update(indices, target))
    print(f"{BATCH}x{N_CLASSES}x{SIZE}x{SIZE} on {DEVICE}, torch threads {torch.get_num_threads()}")
    rows = [
        ("score.py numpy (argmax + fast_hist)", baseline),
        ("update(logits)", from_logits),
        ("update(indices)", from_indices),
    ]
    for label, seconds in rows:
        print(f"{label:<36} {seconds * 1e3:8.1f} ms  ratio {seconds / baseline:.2f}")


if __name__ == "__main__":
    main()
