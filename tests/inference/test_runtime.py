"""Inference paths (fcn_lit.inference.runtime): ONNX Runtime and OpenVINO against eager PyTorch, int8
quantization (ONNX Runtime's and NNCF's), runtime=auto's choice and its cache, CPU feature
detection (forced off too, as on an AVX2 CPU), and predict.py on the exported runtimes. One ONNX
export of the quickstart model (tens of seconds) is shared by the whole module."""

import contextlib
import copy
import io
import json
import logging
import runpy
import subprocess
import sys
from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from random_weights import randomize
from runconfig import REPO, TINY, compose_config

from fcn_lit.inference import openvino_runtime, runtime, speed
from fcn_lit.inference.formats import export_onnx
from fcn_lit.inference.predict import calibration_inputs, load_predictor, predict

CPU = torch.device("cpu")


def force_native_bf16(monkeypatch, native: bool) -> None:
    """The CPU feature flags torch (and so fcn_lit) reads, forced: False is an AVX2 CPU's answer."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: native)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(checkpoint, net, its ONNX file): the quickstart model (`experiment=quickstart`: a 1/8-width
    batch-normalised VGG16 FCN-8s, aligned), random weights, in a run directory whose config.yaml
    names a 16-image synthetic training split."""
    root = tmp_path_factory.mktemp("runtime")
    cfg = compose_config(root / "run", ["experiment=quickstart", *TINY, f"paths.data_dir={root / 'data'}"])
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


@pytest.mark.parametrize("native", [True, False], ids=["native bf16", "no bf16 (AVX2)"])
def test_auto_takes_the_fastest_path_that_agrees_and_says_why(exported, caplog, monkeypatch, native):
    _, net, onnx_file = exported
    force_native_bf16(monkeypatch, native)
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
        assert ("torch bf16" in paths) is ("openvino bf16" in paths) is has_bf16
        assert {"torch fp32", "onnxruntime fp32", "openvino fp32"} <= set(paths)
        assert speed.SpeedOptions().resolve(CPU).precision == ("bf16" if has_bf16 else "fp32")
        assert "int8" not in " ".join(paths)  # int8 only on request
    features = runtime.cpu_features()
    assert set(features["flags"]) <= set(runtime.FLAGS) and features["capability"]


def test_predict_on_the_exported_runtimes_writes_the_masks_of_eager(exported, tmp_path):
    ckpt, _, onnx_file = exported
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name, size in (("a", (40, 56)), ("b", (33, 47))):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(photos / f"{name}.png")
    masks = {}
    exported_runtimes = {r: {"runtime": r, "precision": "fp32", "onnx": str(onnx_file)} for r in runtime.EXPORTED}
    for name, options in {"torch": {"runtime": "torch", "precision": "fp32"}, **exported_runtimes}.items():
        written = predict(ckpt, photos, tmp_path / name, speed_options=options, progress=False, probabilities=True)
        masks[name] = {p.name: np.load(p) for p in written if p.suffix == ".npy"}
    for name in runtime.EXPORTED:
        assert masks[name].keys() == masks["torch"].keys() == {"a_probs.npy", "b_probs.npy"}
        for key, probs in masks["torch"].items():
            np.testing.assert_allclose(masks[name][key].astype(np.float32), probs.astype(np.float32), atol=2e-3)


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


def openvino(net, onnx_file, precision, calibration=None):
    return runtime.build(net, runtime.InferencePath("openvino", precision), speed.SpeedOptions(onnx=str(onnx_file)),
                         CPU, calibration)


def clear_pixels(reference: torch.Tensor, share: float) -> torch.Tensor:
    """Pixels whose two best fp32 classes are more than ``share`` of the largest logit apart."""
    top2 = reference.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1] > share * reference.abs().max()


def test_openvino_fp32_equals_eager_at_any_size_compiled_once_per_size(exported):
    _, net, onnx_file = exported
    run = openvino(net, onnx_file, "fp32")
    sizes = [(1, 37, 53), (2, 64, 48), (1, 101, 77), (1, 37, 53)]
    for x in inputs(*sizes):
        with torch.no_grad():
            torch.testing.assert_close(run(x), net(x), atol=1e-4, rtol=1e-4)
    assert set(run.compiled) == {(n, 3, h, w) for n, h, w in sizes}  # the repeated size reused its compile


@pytest.mark.skipif(not speed.native_bf16(CPU), reason="OpenVINO bf16 needs native bf16 (AVX512-BF16 or AMX)")
def test_openvino_bf16_masks_follow_fp32(exported):
    _, net, onnx_file = exported
    x = inputs((4, 48, 48))[0]
    with torch.no_grad():
        reference = net(x)
    logits = openvino(net, onnx_file, "bf16")(x)
    error = ((logits - reference).abs().max() / reference.abs().max()).item()
    assert 1e-4 < error < 0.05, error  # bf16 ran (fp32 errs ~1e-7), at bf16's 8 significant bits
    clear = clear_pixels(reference, 0.05)
    assert clear.double().mean() > 0.5
    assert torch.equal(logits.argmax(1)[clear], reference.argmax(1)[clear])


def test_export_py_writes_openvino_ir_and_an_nncf_int8_ir_whose_masks_follow_fp32(exported, tmp_path):
    """`python export.py formats=[onnx,openvino] quantize=int8` as typed, in its own process,
    calibrated on the run's training images."""
    ckpt, net, _ = exported
    done = subprocess.run([sys.executable, str(REPO / "export.py"), f"ckpt_path={ckpt}", f"output={tmp_path / 'fcn8s'}",
                           "formats=[onnx,openvino]", "quantize=int8", "calibration_images=8", "example_size=48"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"fcn8s{suffix}" for suffix in (".onnx", ".xml", ".bin", ".int8.onnx", ".int8.xml", ".int8.bin"))
    options = speed.SpeedOptions(openvino=str(tmp_path / "fcn8s.xml"))
    fp32 = runtime.build(net, runtime.InferencePath("openvino", "fp32"), options, CPU)
    for x in inputs((1, 37, 53), (2, 64, 48)):
        with torch.no_grad():
            torch.testing.assert_close(fp32(x), net(x), atol=1e-4, rtol=1e-4)
    assert not openvino_runtime.is_quantized(fp32.model)

    int8 = runtime.build(net, runtime.InferencePath("openvino", "int8"), replace(options, openvino=str(tmp_path / "fcn8s.int8.xml")), CPU)
    assert openvino_runtime.is_quantized(int8.model)
    calibration = calibration_inputs(ckpt, load_predictor(ckpt).normalization, None, 8)  # images it was calibrated on
    x = torch.from_numpy(np.concatenate(calibration[:4]))
    with torch.no_grad():
        reference = net(x)
    logits = int8(x)
    assert runtime.agreement(logits, reference) > 0.9
    clear = clear_pixels(reference, 0.25)
    assert torch.equal(logits.argmax(1)[clear], reference.argmax(1)[clear])


# OpenVINO runners made and freed in another order than made; then a handled signal, as a DataLoader's
# SIGCHLD handler receives one when a child process exits.
RUNNERS_FREED_OUT_OF_ORDER = """
import signal, subprocess, sys
import torch
from fcn_lit.inference import openvino_runtime

model = openvino_runtime.read(sys.argv[1])
x = torch.zeros(1, 3, 48, 48)
runners = [openvino_runtime.OpenVinoRunner(model, "fp32"), openvino_runtime.OpenVinoRunner(model, "fp32"),
           openvino_runtime.OpenVinoRunner(openvino_runtime.quantize(model, [x.numpy()] * 2), "int8")]
for index in range(3):
    runners[index](x)
for index in (0, 1, 0):
    del runners[index]
signal.signal(signal.SIGCHLD, lambda signum, frame: None)
subprocess.run(["true"], check=True)
print("took the signal")
"""


def test_openvino_runners_freed_in_any_order_leave_the_process_able_to_take_signals(exported, tmp_path):
    """Each openvino.Core's CPU plugin swaps the thread's signal stack; freed out of order, they left
    it unmapped and the next handled signal (a child's exit, Ctrl-C) killed the process (SIGSEGV)."""
    _, _, onnx_file = exported
    done = subprocess.run([sys.executable, "-c", RUNNERS_FREED_OUT_OF_ORDER, str(onnx_file)], cwd=tmp_path,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert done.returncode == 0 and "took the signal" in done.stdout, (done.returncode, done.stderr[-3000:])


def test_precisions_a_runtime_or_cpu_cannot_run_are_clear_errors(exported, monkeypatch, tmp_path):
    _, net, onnx_file = exported
    force_native_bf16(monkeypatch, False)
    with pytest.raises(speed.SpeedError, match="speed.precision=bf16 on OpenVINO needs a CPU with native bf16"):
        openvino(net, onnx_file, "bf16")
    with pytest.raises(speed.SpeedError, match="speed.precision=fp16 does not run on OpenVINO: use fp32, bf16 or int8"):
        openvino(net, onnx_file, "fp16")
    with pytest.raises(FileNotFoundError, match="speed.openvino="):
        runtime.build(net, runtime.InferencePath("openvino", "fp32"),
                      speed.SpeedOptions(openvino=str(tmp_path / "x.xml")), CPU)
    assert [str(p) for p in runtime.candidates(CPU, "bf16")] == ["torch bf16"]  # emulated, only on request


def test_predict_py_names_the_setting_it_cannot_run(exported, tmp_path, monkeypatch):
    """`python predict.py ...` as typed, run in this process with its output redirected (as the
    README sandbox does)."""
    ckpt, _, onnx_file = exported
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["predict.py", f"ckpt_path={ckpt}", f"input={tmp_path / 'a.png'}",
                                      f"output={tmp_path / 'out'}", "speed.runtime=openvino", "speed.precision=fp16",
                                      f"speed.onnx={onnx_file}"])
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output), pytest.raises(SystemExit) as exited:
        runpy.run_path(str(REPO / "predict.py"), run_name="__main__")
    assert "Error: speed.precision=fp16 does not run on OpenVINO: use fp32, bf16 or int8" in str(exited.value.code)
    assert "Traceback" not in output.getvalue()


def test_auto_measures_once_per_machine_model_and_input_size(exported, tmp_path, monkeypatch, caplog):
    _, net, onnx_file = exported
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    options = speed.SpeedOptions(runtime="auto", onnx=str(onnx_file))
    measured = []
    measure = runtime.choose
    monkeypatch.setattr(runtime, "choose", lambda net, options, device, sample, *rest: measured.append(
        tuple(sample.shape)) or measure(net, options, device, sample, *rest))
    x = inputs((1, 48, 64))[0]
    runtime.runner(net, options, CPU, sample=lambda: x)
    with caplog.at_level(logging.INFO, logger="fcn_lit.inference.runtime"):
        again = runtime.runner(net, options, CPU, sample=lambda: x)
    assert measured == [(1, 3, 48, 64)] and "measured on" in caplog.text
    (choice,) = json.loads(runtime.auto_cache_file().read_text()).values()
    picked = runtime.InferencePath(choice["runtime"], choice["precision"])
    assert [row["path"] for row in choice["table"]] == [str(p) for p in runtime.candidates(CPU, "auto")]
    torch.testing.assert_close(again(x), runtime.build(net, picked, options, CPU)(x))  # the remembered path runs

    runtime.runner(net, options, CPU, sample=lambda: inputs((1, 40, 40))[0])  # another input size
    other = copy.deepcopy(net)
    with torch.no_grad():
        next(other.parameters()).mul_(1.01)
    runtime.runner(other, options, CPU, sample=lambda: x)  # other weights
    force_native_bf16(monkeypatch, not speed.native_bf16(CPU))
    runtime.runner(net, options, CPU, sample=lambda: x)  # another CPU
    runtime.runner(net, replace(options, auto_cache=False), CPU, sample=lambda: x)  # asked to measure
    assert len(measured) == 5 and len(json.loads(runtime.auto_cache_file().read_text())) == 4


def test_predict_defaults_to_auto_which_exports_and_measures_once(exported, tmp_path, monkeypatch, caplog):
    ckpt, net, _ = exported
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    exports = []
    export = runtime.export_onnx
    monkeypatch.setattr(runtime, "export_onnx", lambda *args, **kwargs: exports.append(args) or export(*args, **kwargs))
    rgb = np.random.default_rng(1).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    with caplog.at_level(logging.INFO, logger="fcn_lit.inference.runtime"):
        for name in ("first", "second"):
            predict(ckpt, tmp_path / "a.png", tmp_path / name, progress=False)
    assert len(exports) == 1 and caplog.text.count("auto: choosing among") == 1 and "measured on" in caplog.text
    masks = [np.array(Image.open(tmp_path / name / "a_mask.png")) for name in ("first", "second")]
    np.testing.assert_array_equal(masks[0], masks[1])
    x = load_predictor(ckpt).normalization(rgb)[None]
    with torch.no_grad():
        eager = net(x).argmax(1)[0].numpy()
    assert (masks[0] == eager).mean() >= runtime.AGREEMENT
