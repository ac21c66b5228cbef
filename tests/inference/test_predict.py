"""predict on a folder of mixed sizes: masks, overlays and probabilities against the net run here."""

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_lit.data import voc_palette
from fcn_lit.inference.predict import find_images, load_predictor, predict

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
SIZES = {"a": (40, 56), "b": (40, 56), "c": (33, 47), "d": (40, 56)}  # (height, width)


def write_images(folder, sizes=SIZES):
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = {}
    for stem, (h, w) in sizes.items():
        images[stem] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(images[stem]).save(folder / f"{stem}.png")
    (folder / "notes.txt").write_text("not an image")
    return images


def logits_of(module, rgb):
    """The net on one image, normalised here with ImageNet's mean and std (the run's setting)."""
    x = torch.from_numpy(((rgb / 255.0 - MEAN) / STD).astype(np.float32).transpose(2, 0, 1))[None]
    with torch.no_grad():
        return module.net(x)[0]


def test_predict_folder_writes_masks_overlays_and_probabilities(tmp_path, run_checkpoint):
    ckpt, module = run_checkpoint
    images = write_images(tmp_path / "photos")
    # PyTorch fp32 forced: runtime=auto may pick another runtime, or bf16 on CPUs with native bf16 (AVX512-BF16, AMX).
    written = predict(ckpt, tmp_path / "photos", tmp_path / "out", batch_size=2, probabilities=True,
                      progress=False, speed_options={"runtime": "torch", "channels_last": True, "precision": "fp32"})
    assert len(written) == 3 * len(images)
    palette = voc_palette(256)
    for stem, rgb in images.items():
        logits = logits_of(module, rgb)
        png = Image.open(tmp_path / "out" / f"{stem}_mask.png")
        assert png.mode == "P"
        mask = np.array(png)
        assert mask.shape == rgb.shape[:2]
        np.testing.assert_array_equal(mask, logits.argmax(0).numpy())
        assert len(np.unique(mask)) > 1  # random weights: a real test of the class indices
        colours = np.array(png.convert("RGB"))
        np.testing.assert_array_equal(colours, palette[mask])

        overlay = np.array(Image.open(tmp_path / "out" / f"{stem}_overlay.png")).astype(np.float32)
        np.testing.assert_allclose(overlay, 0.5 * rgb + 0.5 * palette[mask], atol=1)

        probs = np.load(tmp_path / "out" / f"{stem}_probs.npy")
        assert probs.dtype == np.float16 and probs.shape == (4, *rgb.shape[:2])
        np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=4e-3)
        np.testing.assert_allclose(probs, logits.softmax(0).numpy(), atol=1e-3)


def test_bf16_autocast_agrees_with_fp32_at_bf16_precision(tmp_path, run_checkpoint):
    """The bf16 path (precision=auto's pick on GPUs and on CPUs with native bf16), forced so that it
    runs on every CPU (emulated where bf16 is not native)."""
    ckpt, module = run_checkpoint
    images = write_images(tmp_path / "photos", {"c": (33, 47)})
    predict(ckpt, tmp_path / "photos", tmp_path / "out", probabilities=True, progress=False,
            speed_options={"runtime": "torch", "precision": "bf16"})
    for stem, rgb in images.items():
        logits = logits_of(module, rgb)
        probs = np.load(tmp_path / "out" / f"{stem}_probs.npy").astype(np.float32)
        error = np.abs(probs - logits.softmax(0).numpy()).max()
        # bf16 keeps 8 significant bits (2**-8 = 0.004 relative); float16 storage alone errs < 2.5e-4.
        assert 5e-4 < error < 0.02, error
        mask = np.array(Image.open(tmp_path / "out" / f"{stem}_mask.png"))
        top2 = logits.topk(2, dim=0).values
        clear = (top2[0] - top2[1] > 0.03 * logits.abs().max()).numpy()  # margins beyond bf16 rounding
        assert clear.mean() > 0.5
        np.testing.assert_array_equal(mask[clear], logits.argmax(0).numpy()[clear])


def test_normalization_comes_from_the_run_config_or_the_weights(tmp_path, run_checkpoint):
    ckpt, _ = run_checkpoint
    config = ckpt.parent.parent / "config.yaml"
    assert "normalization: null" in config.read_text()  # null: what the weights expect
    config.write_text(config.read_text().replace("normalization: null", "normalization: caffe"))
    caffe = load_predictor(ckpt).normalization
    assert caffe.preprocessing.bgr and caffe.preprocessing.std == (1.0, 1.0, 1.0)
    config.unlink()  # without the run directory: the trunk's torchvision weights mean ImageNet
    imagenet = load_predictor(ckpt).normalization
    np.testing.assert_allclose(imagenet.preprocessing.mean, MEAN, rtol=1e-6)
    assert load_predictor(ckpt, normalization="caffe").normalization == caffe


def test_glob_and_single_file_inputs(tmp_path):
    write_images(tmp_path / "photos")
    assert [p.stem for p in find_images(tmp_path / "photos" / "*.png")] == ["a", "b", "c", "d"]
    assert find_images(tmp_path / "photos" / "c.png") == [tmp_path / "photos" / "c.png"]


def test_bad_inputs_name_the_problem(tmp_path, run_checkpoint):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        find_images(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_predictor(tmp_path / "missing.ckpt")
    for sub in ("x", "y"):
        write_images(tmp_path / sub, {"same": (8, 8)})
    with pytest.raises(ValueError, match="same"):
        find_images(tmp_path / "*" / "same.png")


def test_command_line(tmp_path, run_checkpoint):
    """`python predict.py` and `python export.py` with Hydra overrides, as a user runs them."""
    import subprocess
    import sys
    from pathlib import Path

    ckpt, _ = run_checkpoint
    write_images(tmp_path / "photos", {"p": (30, 41)})
    repo = Path(__file__).resolve().parents[2]
    env = {"PYTHONPATH": str(repo / "src"), "PATH": "/usr/bin:/bin"}
    commands = [
        ["predict.py", f"ckpt_path={ckpt}", f"input={tmp_path / 'photos'}", f"output={tmp_path / 'out'}",
         "probabilities=true", "device=cpu"],
        ["export.py", f"ckpt_path={ckpt}", f"output={tmp_path / 'fcn'}", "formats=[torchscript]"],
    ]
    for args in commands:
        done = subprocess.run([sys.executable, str(repo / args[0]), *args[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p_mask.png", "p_overlay.png", "p_probs.npy"]
    assert (tmp_path / "fcn.pt").is_file()
