"""The data browser: training samples as the net sees them, overlaid in the palette, void striped."""

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image
from runconfig import TINY, compose_config

from fcn_lit.data.browse import STRIPE, legend, main, overlay, training_samples
from fcn_lit.data.palette import voc_palette


def test_overlay_blends_the_palette_and_stripes_void():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    mask = rng.integers(0, 3, (12, 16))
    mask[4:9, 2:14] = 255
    palette = voc_palette(3)
    out = overlay(image, mask, palette, alpha=0.25).astype(np.float32)
    labelled = mask != 255
    np.testing.assert_allclose(out[labelled], (0.75 * image + 0.25 * palette[mask.clip(0, 2)])[labelled], atol=0.5)
    rows, cols = np.nonzero(~labelled)
    white = ((rows + cols) // STRIPE) % 2 == 0
    assert (out[rows[white], cols[white]] == 255).all() and (out[rows[~white], cols[~white]] == 0).all()
    assert white.any() and (~white).any()


def test_legend_lists_the_classes_shown_and_void():
    masks = [np.array([[0, 2], [255, 2]]), np.array([[5, 0]])]
    assert legend(masks, ["a", "b", "c", "d", "e", "f"]) == ([0, 2, 5], True)
    assert legend([np.array([[1]])], ["a", "b"]) == ([1], False)


@pytest.fixture
def synthetic_overrides(tmp_path):
    return [*TINY, f"data.root={tmp_path / 'synthetic'}", "data.augmentation=modern", "data.batching=crop",
            "data.crop_size=40", "data.batch_size=3"]


def test_samples_are_what_the_training_loader_yields(tmp_path, synthetic_overrides):
    cfg = compose_config(tmp_path / "run", synthetic_overrides)
    datamodule = instantiate(cfg.data, normalization="imagenet")
    datamodule.prepare_data()
    samples = training_samples(datamodule, 5, seed=3)
    torch.manual_seed(3)
    images, masks = next(iter(datamodule.train_dataloader()))
    assert len(samples) == 5 and all(s[0].shape == (40, 40, 3) and s[1].shape == (40, 40) for s in samples)
    for (image, mask), x, y in zip(samples, images, masks):
        np.testing.assert_array_equal(mask, y.numpy())
        np.testing.assert_array_equal(image, datamodule.denormalize(x))
    assert any((m == 255).any() for _, m in samples)  # the synthetic set's void bands


@pytest.mark.slow
def test_browse_writes_a_grid_png(tmp_path, synthetic_overrides, capsys):
    out = tmp_path / "grid.png"
    assert main([*synthetic_overrides, "--samples", "6", "--columns", "3", "--out", str(out)]) == out
    picture = np.array(Image.open(out).convert("RGB"))
    assert picture.shape[0] > 200 and picture.shape[1] > 3 * 150
    assert f"Wrote {out}" in capsys.readouterr().out
    colours = {tuple(c) for c in picture.reshape(-1, 3)}
    assert (0, 0, 0) in colours and (255, 255, 255) in colours
    with pytest.raises(SystemExit):
        main([*synthetic_overrides, "--samples", "0", "--out", str(out)])
