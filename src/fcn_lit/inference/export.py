"""Export a trained FCN: ``python export.py ckpt_path=<run>/checkpoints/best.ckpt output=fcn8s`` writes
fcn8s.onnx and fcn8s.pt; with openvino in ``formats`` also its OpenVINO IR fcn8s.xml + fcn8s.bin; with
``quantize=int8`` also fcn8s.int8.onnx (``fcn_lit.inference.runtime.quantize_int8``) and, with
openvino, fcn8s.int8.xml + .bin (NNCF)."""

from __future__ import annotations

from pathlib import Path

from fcn_lit.errors import UserError
from fcn_lit.inference import openvino_runtime
from fcn_lit.inference.formats import export_onnx, export_torchscript
from fcn_lit.inference.predict import calibration_inputs, load_predictor
from fcn_lit.inference.runtime import quantize_int8

FORMATS = ("onnx", "openvino", "torchscript")
DEFAULT_FORMATS = ("onnx", "torchscript")


def export(ckpt_path: str | Path, output: str | Path, formats: tuple[str, ...] = DEFAULT_FORMATS, *,
           example_size: int = 224, opset: int = 18, quantize: str | None = None, calibration: str | None = None,
           calibration_images: int = 32) -> list[Path]:
    """Export a train.py checkpoint (or a pytorch-fcn .pth) to ``<output>.onnx`` and ``<output>.pt``;
    "openvino" in ``formats`` converts the ONNX file to ``<output>.xml`` + ``.bin``;
    ``quantize="int8"`` adds ``<output>.int8.onnx`` (and ``<output>.int8.xml`` + ``.bin`` with
    openvino), calibrated on ``calibration_images`` images of ``calibration`` (folder or glob;
    None: the run's training split)."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ExportError(f"formats={list(formats)} has unknown {unknown}; choose from {FORMATS}")
    if quantize not in (None, "int8"):
        raise ExportError(f"quantize={quantize!r} is not one of null, int8")
    if ("openvino" in formats or quantize) and "onnx" not in formats:
        raise ExportError(f"formats={list(formats)}{' with quantize=int8' if quantize else ''}: OpenVINO IR and int8 "
                          "are converted from the ONNX export, so add onnx to formats")
    predictor = load_predictor(ckpt_path)
    output = Path(output)
    written = []
    if "onnx" in formats:
        onnx_file = export_onnx(predictor.net, output.with_suffix(".onnx"), example_size=example_size, opset=opset)
        written.append(onnx_file)
        inputs = calibration_inputs(ckpt_path, predictor.normalization, calibration, calibration_images) if quantize else []
        if quantize:
            written.append(quantize_int8(onnx_file, output.with_suffix(".int8.onnx"), inputs))
        if "openvino" in formats:
            model = openvino_runtime.read(onnx_file)
            written += ir_files(openvino_runtime.save_ir(model, output.with_suffix(".xml")))
            if quantize:
                int8 = openvino_runtime.quantize(model, inputs)
                written += ir_files(openvino_runtime.save_ir(int8, output.with_suffix(".int8.xml")))
    if "torchscript" in formats:
        written.append(export_torchscript(predictor.net, output.with_suffix(".pt"), example_size=example_size))
    return written


def ir_files(xml: Path) -> list[Path]:
    return [xml, xml.with_suffix(".bin")]


class ExportError(UserError, ValueError):
    """export.py settings that do not go together."""
