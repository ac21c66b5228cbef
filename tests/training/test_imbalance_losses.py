"""model.loss options for imbalanced classes through train.py: median frequency weights counted
from the training split reach the OHEM loss (each loss's formula: tests/test_losses.py)."""

import numpy as np
import pytest
from hydra.utils import instantiate

import fcn_lit.training.module
from fcn_lit.training.train import train

FAST = ["model.optimizer.name=adamw", "num_pictures=0", "+trainer.num_sanity_val_steps=0",
        "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1"]


def eigen_fergus_weights(masks: list[np.ndarray], num_classes: int) -> list[float]:
    """weight(c) = median freq / freq(c); freq(c) = pixels of c / pixels of the images holding c."""
    freq = {}
    for c in range(num_classes):
        holding = [m for m in masks if (m == c).any()]
        if holding:
            freq[c] = sum(int((m == c).sum()) for m in holding) / sum(int((m != 255).sum()) for m in holding)
    median = float(np.median(list(freq.values())))
    return [median / freq[c] if c in freq else 0.0 for c in range(num_classes)]


@pytest.mark.slow
def test_median_frequency_weights_come_from_the_training_split(tiny_cfg, monkeypatch):
    used = []
    real = fcn_lit.training.module.segmentation_loss

    def recording(*args, **kwargs):
        used.append(kwargs["class_weights"])
        return real(*args, **kwargs)

    monkeypatch.setattr(fcn_lit.training.module, "segmentation_loss", recording)
    cfg = tiny_cfg("model.loss.name=ohem", "model.loss.class_weights=median_frequency", "model.loss.ohem_min_kept=64",
                   *FAST)
    results = train(cfg)
    assert np.isfinite(results["test"]["mean_iu"])
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    dataset = datamodule.build_dataset("train")
    masks = [dataset.load(i)[1] for i in dataset.ids]
    assert used and all(w == used[0] for w in used)
    np.testing.assert_allclose(used[0], eigen_fergus_weights(masks, datamodule.num_classes))
