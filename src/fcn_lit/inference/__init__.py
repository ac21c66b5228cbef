"""Inference: a trained FCN applied to images, scored on a data set, or exported.

- ``tiling``: sliding windows and test-time augmentation around any forward pass
  (``segment``, ``Segmenter``, ``Tiling``, ``TTA``, importable from here)
- ``predict``: the predict task (masks, overlays, probabilities); ``evaluate``: the eval task
- ``speed``, ``runtime``: speed options and the inference paths (eager PyTorch, ONNX Runtime; fp32,
  bf16, int8) that ``auto`` measures and picks
- ``formats``: ONNX and TorchScript forms of a net; ``export``: the export task
"""

from fcn_lit.inference.tiling import TTA, Segmenter, Tiling, mean_pixel, segment

__all__ = ["TTA", "Segmenter", "Tiling", "mean_pixel", "segment"]
