"""Export a trained FCN: ``python export.py ckpt_path=<run>/checkpoints/best.ckpt output=fcn8s`` writes
fcn8s.onnx and fcn8s.pt; with ``quantize=int8`` also fcn8s.int8.onnx (``fcn_lit.inference.runtime.quantize_int8``)."""

from __future__ import annotations

from pathlib import Path

from fcn_lit.inference.formats import export_onnx, export_torchscript
from fcn_lit.inference.predict import calibration_inputs, load_predictor
from fcn_lit.inference.runtime import quantize_int8

FORMATS = ("onnx", "torchscript")


def export(ckpt_path: str | Path, output: str | Path, formats: tuple[str, ...] = FORMATS, *,
           example_size: int = 224, opset: int = 18, quantize: str | None = None, calibration: str | None = None,
           calibration_images: int = 32) -> list[Path]:
    """Export a train.py checkpoint (or a pytorch-fcn .pth) to ``<output>.onnx`` and ``<output>.pt``;
    ``quantize="int8"`` adds ``<output>.int8.onnx``, calibrated on ``calibration_images`` images of
    ``calibration`` (folder or glob; None: the run's training split)."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"formats={list(formats)} has unknown {unknown}; choose from {FORMATS}")
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize={quantize!r} is not one of null, int8")
    if quantize and "onnx" not in formats:
        raise ValueError(f"quantize=int8 quantizes the ONNX export, but formats={list(formats)} has no onnx")
    predictor = load_predictor(ckpt_path)
    output = Path(output)
    written = []
    if "onnx" in formats:
        written.append(export_onnx(predictor.net, output.with_suffix(".onnx"), example_size=example_size, opset=opset))
        if quantize == "int8":
            inputs = calibration_inputs(ckpt_path, predictor.normalization, calibration, calibration_images)
            written.append(quantize_int8(written[-1], output.with_suffix(".int8.onnx"), inputs))
    if "torchscript" in formats:
        written.append(export_torchscript(predictor.net, output.with_suffix(".pt"), example_size=example_size))
    return written
