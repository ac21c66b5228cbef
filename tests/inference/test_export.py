"""ONNX (run by onnxruntime) and TorchScript exports against eager PyTorch at several sizes."""

import logging
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch
from random_weights import randomize

from fcn_lit.inference import formats
from fcn_lit.inference.export import export
from fcn_lit.inference.formats import export_onnx, export_torchscript, weight_bytes
from fcn_lit.models import build_fcn

SIZES = [(2, 64, 64), (1, 37, 53), (1, 101, 77), (1, 20, 24)]  # (batch, height, width): odd, and smaller than fc6 sees


def tiny_net(alignment):
    return randomize(build_fcn("vgg16", 8, 5, width=1 / 16, alignment=alignment)).eval()


def inputs():
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(n, 3, h, w, generator=generator) for n, h, w in SIZES]


@pytest.mark.parametrize("alignment", ["caffe", "aligned"])
def test_onnx_matches_eager_at_every_size(tmp_path, alignment):
    """One self-contained .onnx file: copied alone elsewhere, it still runs."""
    net = tiny_net(alignment)
    export_onnx(net, tmp_path / "export" / "fcn.onnx", example_size=48)
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["fcn.onnx"]
    (tmp_path / "copy").mkdir()
    copy = shutil.copy(tmp_path / "export" / "fcn.onnx", tmp_path / "copy")
    session = ort.InferenceSession(str(copy))
    for x in inputs():
        (logits,) = session.run(None, {"image": x.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(logits, net(x).numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_weights_past_the_onnx_file_limit_go_beside_it_and_the_log_says_so(tmp_path, monkeypatch, caplog):
    net = tiny_net("aligned")
    monkeypatch.setattr(formats, "ONNX_FILE_LIMIT", weight_bytes(net))  # as if these were 2 GB
    with caplog.at_level(logging.WARNING, logger=formats.__name__):
        path = export_onnx(net, tmp_path / "fcn.onnx", example_size=48)
    assert (tmp_path / "fcn.onnx.data").is_file() and "copy both files together" in caplog.text
    (logits,) = ort.InferenceSession(str(path)).run(None, {"image": inputs()[0].numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(logits, net(inputs()[0]).numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("alignment", ["caffe", "aligned"])
def test_torchscript_matches_eager_at_every_size(tmp_path, alignment):
    net = tiny_net(alignment)
    loaded = torch.jit.load(str(export_torchscript(net, tmp_path / "fcn.pt", example_size=48)))
    for x in inputs():
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), net(x), atol=1e-5, rtol=1e-5)


def test_export_from_a_checkpoint_keeps_the_module(tmp_path, run_checkpoint):
    """The checkpoint's net (batch-normalised, Caffe alignment) as TorchScript; ONNX is the same
    export_onnx call tested above and costs ~20 s a graph, so it is left out here."""
    ckpt, module = run_checkpoint
    (script_path,) = export(ckpt, tmp_path / "out" / "fcn8s", ("torchscript",), example_size=48)
    assert script_path.name == "fcn8s.pt"
    x = torch.randn(1, 3, 45, 61)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(script_path))(x), module.net(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="tflite"):
        export(ckpt, tmp_path / "x", ("tflite",))
    with pytest.raises(ValueError, match=r"formats=\['openvino'\]: OpenVINO IR and int8 are converted from the ONNX export"):
        export(ckpt, tmp_path / "x", ("openvino",))
