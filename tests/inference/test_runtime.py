"""Inference paths (fcn_lit.inference.runtime): ONNX Runtime against eager PyTorch, int8 static quantization,
runtime=auto's choice, CPU feature detection, and predict.py on ONNX Runtime. One ONNX export (tens
of seconds) is shared by the whole module."""

import logging

import numpy as np
import onnx
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from random_weights import randomize
from runconfig import TINY, compose_config

from fcn_lit.inference import runtime, speed
from fcn_lit.inference.formats import export_onnx
from fcn_lit.inference.predict import calibration_inputs, load_predictor, predict

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(checkpoint, net, its ONNX file): a tiny batch-normalised FCN-8s in a run directory whose
    config.yaml names a 16-image synthetic training split."""
    root = tmp_path_factory.mktemp("runtime")
    cfg = compose_config(root / "run", [*TINY, f"paths.data_dir={root / 'data'}"])
    module = instantiate(cfg.model, num_classes=6, class_names=[str(i) for i in range(6)]).eval()
    randomize(module.net)
    ckpt = root / "run" / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, ckpt)
    OmegaConf.save(cfg, root / "run" / "config.yaml", resolve=True)
    return ckpt, module.net, export_onnx(module.net, root / "fcn.onnx", example_size=48)


def inputs(*sizes):
    generator = torch.Generator().manual_seed(3)
    return [torch.randn(n, 3, h, w, generator=generator) for n, h, w in sizes]


def test_onnxruntime_runner_matches_eager_at_any_size(exported):
    _, net, onnx_file = exported
    run = runtime.build(net, runtime.InferencePath("onnxruntime", "fp32"), speed.SpeedOptions(onnx=str(onnx_file)), CPU)
    for x in inputs((1, 37, 53), (2, 64, 48), (1, 101, 77)):
        with torch.no_grad():
            torch.testing.assert_close(run(x), net(x), atol=1e-4, rtol=1e-4)


def test_int8_is_a_quantized_graph_whose_masks_follow_fp32(exported, tmp_path):
    ckpt, net, onnx_file = exported
    normalization = load_predictor(ckpt).normalization
    calibration = calibration_inputs(ckpt, normalization, None, 8)  # from the run's training split
    assert len(calibration) == 8 and calibration[0].shape == (1, 3, 48, 48) and calibration[0].dtype == np.float32
    int8_file = runtime.quantize_int8(onnx_file, tmp_path / "fcn.int8.onnx", calibration)
    graph = onnx.load(str(int8_file)).graph
    weights = {t.name: t for t in graph.initializer}
    quantized_convs = [n for n in graph.node if n.op_type == "DequantizeLinear"
                       and n.input[0] in weights and weights[n.input[0]].data_type == onnx.TensorProto.INT8]
    assert len(quantized_convs) >= 15  # every conv of VGG16 and the score layers hold int8 weights
    run = runtime.OnnxRunner(int8_file)
    x = torch.from_numpy(np.concatenate(calibration[:4]))
    with torch.no_grad():
        reference = net(x)
    assert runtime.agreement(run(x), reference) > 0.9
    assert not (tmp_path / "fcn.int8.onnx.partial").exists()


def test_auto_takes_the_fastest_path_that_agrees_and_says_why(exported, caplog):
    _, net, onnx_file = exported
    options = speed.SpeedOptions(runtime="auto", onnx=str(onnx_file))
    sample = inputs((1, 48, 64))[0]
    with caplog.at_level(logging.INFO, logger="fcn_lit.inference.runtime"):
        picked, run, table = runtime.choose(net, options, CPU, sample)
    assert [row["path"] for row in table] == [str(p) for p in runtime.candidates(CPU, "auto")]
    agreeing = [row for row in table if row["agreement"] is not None and row["agreement"] >= runtime.AGREEMENT]
    assert str(picked) == min(agreeing, key=lambda row: row["ms"])["path"]
    with torch.no_grad():
        assert runtime.agreement(run(sample), net(sample)) >= runtime.AGREEMENT
    assert f"{picked}" in caplog.text and "picked" in caplog.text and "capability" in caplog.text


def test_bf16_is_a_candidate_only_where_the_cpu_has_it(monkeypatch):
    for has_bf16 in (False, True):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda has=has_bf16: has)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        paths = [str(p) for p in runtime.candidates(CPU, "auto")]
        assert ("torch bf16" in paths) is has_bf16
        assert speed.SpeedOptions().resolve(CPU).precision == ("bf16" if has_bf16 else "fp32")
        assert "int8" not in " ".join(paths)  # int8 only on request
    features = runtime.cpu_features()
    assert set(features["flags"]) <= set(runtime.FLAGS) and features["capability"]


def test_predict_on_onnxruntime_writes_the_masks_of_eager(exported, tmp_path):
    ckpt, _, onnx_file = exported
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name, size in (("a", (40, 56)), ("b", (33, 47))):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(photos / f"{name}.png")
    masks = {}
    for name, options in (("torch", {"precision": "fp32"}), ("onnxruntime", {"runtime": "onnxruntime", "onnx": str(onnx_file)})):
        written = predict(ckpt, photos, tmp_path / name, speed_options=options, progress=False, probabilities=True)
        masks[name] = {p.name: np.load(p) for p in written if p.suffix == ".npy"}
    assert masks["torch"].keys() == masks["onnxruntime"].keys() == {"a_probs.npy", "b_probs.npy"}
    for key, probs in masks["torch"].items():
        np.testing.assert_allclose(masks["onnxruntime"][key].astype(np.float32), probs.astype(np.float32), atol=2e-3)


def test_bad_runtime_settings_name_the_key(exported, tmp_path):
    ckpt, net, _ = exported
    with pytest.raises(ValueError, match="speed.precision='int4'"):
        speed.SpeedOptions(precision="int4")
    with pytest.raises(ValueError, match="speed.runtime='tensorrt'"):
        speed.SpeedOptions(runtime="tensorrt")
    with pytest.raises(FileNotFoundError, match="speed.onnx"):
        runtime.build(net, runtime.InferencePath("onnxruntime", "fp32"), speed.SpeedOptions(onnx=str(tmp_path / "x.onnx")), CPU)
    with pytest.raises(ValueError, match="bf16 does not run on ONNX Runtime"):
        runtime.onnx_runner(net, "bf16")
    lone = tmp_path / "elsewhere.ckpt"
    lone.write_bytes(ckpt.read_bytes())
    with pytest.raises(FileNotFoundError, match="speed.calibration="):
        calibration_inputs(lone, load_predictor(lone).normalization, None, 4)


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_fp32_on_onnxruntime_on_any_cpu(native, monkeypatch):
    """Whatever the CPU: bf16 in PyTorch only where it is native; ONNX Runtime always fp32."""
    monkeypatch.setattr(speed, "native_bf16", lambda device: native)
    assert speed.SpeedOptions(runtime="onnxruntime").resolve(CPU).precision == "fp32"
    assert speed.SpeedOptions(runtime="torch").resolve(CPU).precision == ("bf16" if native else "fp32")
