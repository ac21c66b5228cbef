import numpy as np
import pytest
import torch

from fcn_lit.data import VOC, NYUDv2
from fcn_lit.data import transforms as T


def test_imagenet_normalization_is_rgb_over_255_minus_mean_over_std():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    norm = T.build_normalization("imagenet")
    out = norm(image)
    expected = (image / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert out.dtype == torch.float32 and out.shape == (3, 5, 7)
    np.testing.assert_allclose(out.numpy(), expected.transpose(2, 0, 1), atol=1e-5)
    np.testing.assert_array_equal(norm.denormalize(out), image)


def test_caffe_normalization_is_bgr_0_255_minus_the_dataset_mean():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    mean_bgr = np.array([104.00699, 116.66877, 122.67892])
    norm = T.build_normalization("caffe", caffe_means=VOC.caffe_means)
    out = norm(image).numpy()
    np.testing.assert_allclose(out, (image[..., ::-1] - mean_bgr).transpose(2, 0, 1), atol=1e-4)
    np.testing.assert_array_equal(norm.denormalize(torch.from_numpy(out)), image)


def test_stacked_modalities_normalize_each_block():
    rng = np.random.default_rng(2)
    color = rng.integers(0, 256, size=(3, 4, 3)).astype(np.float32)
    hha = rng.integers(0, 256, size=(3, 4, 3)).astype(np.float32)
    depth = rng.normal(size=(3, 4, 1)).astype(np.float32)
    norm = T.build_normalization("caffe", {"color": 3, "hha": 3, "depth": 1}, NYUDv2.caffe_means)
    out = norm(np.concatenate([color, hha, depth], axis=-1)).numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(out[..., :3], color[..., ::-1] - np.array([116.190, 97.203, 92.318]), atol=1e-4)
    np.testing.assert_allclose(out[..., 3:6], hha - np.array([132.431, 94.076, 118.477]), atol=1e-4)
    np.testing.assert_allclose(out[..., 6], depth[..., 0], atol=1e-6)


def test_pad_collate_pads_images_with_zero_and_masks_with_void():
    a = (torch.ones(3, 2, 5), torch.zeros(2, 5, dtype=torch.long))
    b = (torch.full((3, 4, 3), 2.0), torch.ones(4, 3, dtype=torch.long))
    images, targets = T.pad_collate([a, b])
    assert images.shape == (2, 3, 4, 5) and targets.shape == (2, 4, 5)
    assert torch.equal(images[0, :, :2], a[0]) and (images[0, :, 2:] == 0).all()
    assert torch.equal(images[1, :, :, :3], b[0]) and (images[1, :, :, 3:] == 0).all()
    assert torch.equal(targets[0, :2], a[1]) and (targets[0, 2:] == 255).all()
    assert torch.equal(targets[1, :, :3], b[1]) and (targets[1, :, 3:] == 255).all()
    _, dict_targets = T.pad_collate([(a[0], {"semantic": a[1]}), (b[0], {"semantic": b[1]})])
    assert torch.equal(dict_targets["semantic"], targets)


def _colour_coded(rng, height, width):
    """An image whose pixel colour is a function of its class, to check image and mask move together."""
    mask = rng.integers(0, 8, size=(height // 8, width // 8)).repeat(8, 0).repeat(8, 1).astype(np.uint8)
    image = np.stack([mask * 30, 255 - mask * 30, np.full_like(mask, 128)], axis=-1).astype(np.uint8)
    return image, mask


def test_fixed_crop_keeps_image_and_mask_aligned_and_pads_with_void():
    rng = np.random.default_rng(3)
    image, mask = _colour_coded(rng, 24, 40)
    augment = T.build_augmentation(True, "none", "crop", 32)
    out = augment(image=image, mask=mask)
    assert out["image"].shape == (32, 32, 3) and out["mask"].shape == (32, 32)
    padded = out["mask"] == 255
    assert padded.sum() == 32 * (32 - 24)  # only the rows added to reach 32 are void
    assert (out["image"][padded] == 0).all()
    np.testing.assert_array_equal(out["image"][~padded][:, 0], out["mask"][~padded] * 30)


def test_modern_augmentation_scales_crops_and_keeps_labels():
    rng = np.random.default_rng(4)
    image, mask = _colour_coded(rng, 48, 48)
    augment = T.build_augmentation(True, "modern", "crop", 40)
    augment.set_random_seed(0)
    shapes = set()
    for _ in range(30):
        out = augment(image=image, mask=mask)
        assert out["image"].shape == (40, 40, 3) and out["image"].dtype == np.uint8
        assert set(np.unique(out["mask"])) <= set(np.unique(mask)) | {255}
        shapes.add(int((out["mask"] == 255).sum()))
    assert len(shapes) > 1  # the random scale changes how much padding is needed
    assert T.build_augmentation(False, "modern", "crop", 40) is None
    assert T.build_augmentation(True, "none", "single", 40) is None


@pytest.mark.parametrize("key,value", [("augmentation", "heavy"), ("batching", "stack")])
def test_unknown_settings_name_the_key(key, value):
    settings = {"augmentation": "none", "batching": "pad"} | {key: value}
    with pytest.raises(ValueError, match=f"data.{key}='{value}'"):
        T.build_augmentation(True, settings["augmentation"], settings["batching"], 32)
