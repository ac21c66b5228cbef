"""predict on a folder of real-world photos: truncated and non-image files are listed at the end
while every other image is segmented; 16/32-bit images are scaled to 8 bits; EXIF orientation is
applied, so a photo is segmented as a viewer displays it."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_predict import logits_of

from fcn_lit.inference.predict import UnreadableImages, predict

ROTATED_90_CW = 6  # EXIF orientation: viewers turn the stored pixels 90 degrees clockwise


def write_bad_folder(folder: Path) -> dict[str, np.ndarray]:
    """Photos of every kind; returns {stem: the 8-bit RGB image a viewer displays} of the readable ones."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    shown = {"a_plain": rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)}
    Image.fromarray(shown["a_plain"]).save(folder / "a_plain.png")

    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / "b_truncated.jpg", quality=95)
    data = (folder / "b_truncated.jpg").read_bytes()
    (folder / "b_truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "c_not_an_image.jpg").write_text("<html>404</html>")

    deep = rng.integers(0, 65536, (24, 32), dtype=np.uint16)
    Image.fromarray(deep).save(folder / "d_16bit.png")  # PIL mode I;16
    shown["d_16bit"] = np.repeat(np.rint(deep / 257.0).astype(np.uint8)[..., None], 3, axis=2)

    unit = rng.random((24, 32), dtype=np.float32)
    Image.fromarray(unit).save(folder / "e_float.tif")  # PIL mode F, values in 0..1
    shown["e_float"] = np.repeat(np.rint(unit.astype(np.float64) * 255).astype(np.uint8)[..., None], 3, axis=2)

    shown["f_phone"] = rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)
    stored = np.rot90(shown["f_phone"], k=1)  # stored 90 degrees counter-clockwise of what is displayed
    exif = Image.Exif()
    exif[0x0112] = ROTATED_90_CW
    Image.fromarray(np.ascontiguousarray(stored)).save(folder / "f_phone.png", exif=exif)
    return shown


def test_every_readable_photo_is_segmented_and_the_others_listed(tmp_path, run_checkpoint):
    ckpt, module = run_checkpoint
    shown = write_bad_folder(tmp_path / "photos")
    assert Image.open(tmp_path / "photos" / "d_16bit.png").mode == "I;16"
    assert Image.open(tmp_path / "photos" / "e_float.tif").mode == "F"
    with pytest.raises(UnreadableImages) as raised:
        predict(ckpt, tmp_path / "photos", tmp_path / "out", batch_size=2, progress=False,
                speed_options={"runtime": "torch", "precision": "fp32"})
    failures = dict((path.name, reason) for path, reason in raised.value.failures)
    assert list(failures) == ["b_truncated.jpg", "c_not_an_image.jpg"]
    assert "truncated" in failures["b_truncated.jpg"] and "cannot identify" in failures["c_not_an_image.jpg"]
    assert "b_truncated.jpg" in str(raised.value) and "c_not_an_image.jpg" in str(raised.value)
    assert sorted(p.name for p in raised.value.written) == sorted(
        f"{stem}_{kind}.png" for stem in shown for kind in ("mask", "overlay"))
    for stem, rgb in shown.items():
        mask = np.array(Image.open(tmp_path / "out" / f"{stem}_mask.png"))
        np.testing.assert_array_equal(mask, logits_of(module, rgb).argmax(0).numpy(), err_msg=stem)
        overlay = np.array(Image.open(tmp_path / "out" / f"{stem}_overlay.png")).astype(np.float32)
        assert overlay.shape == rgb.shape  # the displayed photo under the mask, not the stored one


def test_command_line_exits_non_zero_and_lists_the_failures(tmp_path, run_checkpoint):
    """`python predict.py ...` as typed, in its own process: its exit status and both streams."""
    ckpt, _ = run_checkpoint
    write_bad_folder(tmp_path / "photos")
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(repo / "predict.py"), f"ckpt_path={ckpt}", f"input={tmp_path / 'photos'}",
                           f"output={tmp_path / 'out'}", "device=cpu", "speed.runtime=torch", "speed.precision=fp32"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(repo / "src")}, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Wrote 8 files" in done.stdout
    assert "2 image(s) could not be read" in done.stderr and str(tmp_path / "photos" / "b_truncated.jpg") in done.stderr
    assert len(list((tmp_path / "out").glob("*_mask.png"))) == 4
