"""FCNModule options: SIFT Flow's scored class subset and geometric accuracy, FCN-32s-fixed,
transplanting a previous stage; the NaN guard's advice; atomic checkpoint writes; random state."""

import io
import random

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fcn_lit.training.checkpointing import AtomicCheckpointIO, rng_states, set_rng_states
from fcn_lit.training.guards import likely_cause
from fcn_lit.training.module import FCNModule
from fcn_lit.training.optim import build_optimizer


def tiny_module(stride=32, **options) -> FCNModule:
    return FCNModule(
        net={"stride": stride, "alignment": "aligned"},
        backbone={"name": "vgg16", "pretrained": False, "width": 0.125, "norm": "batch"},
        loss={"normalize": True},
        optimizer={"lr": 1e-3},
        scheduler={"name": "fixed"},
        **options,
    )


def randomize_scores(module: FCNModule) -> None:
    torch.manual_seed(1)
    for name, param in module.net.named_parameters():
        if ".score" in name:
            param.data.normal_(0, 1)


def confusion(pred: np.ndarray, target: np.ndarray, n: int) -> np.ndarray:
    keep = target < n
    return np.bincount(n * target[keep] + pred[keep], minlength=n * n).reshape(n, n)


def test_siftflow_scores_a_class_subset_and_logs_geometric_accuracy():
    module = tiny_module(num_classes=6, task_heads={"semantic": 6, "geometric": 3},
                         excluded_classes={"semantic": [2, 4]})
    randomize_scores(module)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(5, 3, 32, 32, generator=generator)
    semantic = torch.randint(0, 6, (5, 32, 32), generator=generator)
    semantic[:, :4] = 255
    geometric = torch.randint(0, 3, (5, 32, 32), generator=generator)
    batches = [(images[i : i + 2], {"semantic": semantic[i : i + 2], "geometric": geometric[i : i + 2]})
               for i in range(0, 5, 2)]
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.validate(module, dataloaders=DataLoader(batches, batch_size=None), verbose=False)

    module.eval()
    with torch.no_grad():
        out = module(images)
    hist = confusion(out["semantic"].argmax(1).numpy().ravel(), semantic.numpy().ravel(), 6)
    scored = [0, 1, 3, 5]
    iu = np.diag(hist) / (hist.sum(0) + hist.sum(1) - np.diag(hist))
    sub = hist[scored]
    geo = confusion(out["geometric"].argmax(1).numpy().ravel(), geometric.numpy().ravel(), 3)

    results = module.results["val"]
    assert results["semantic"]["mean_iu"] == pytest.approx(np.nanmean(iu[scored]))
    assert results["semantic"]["pixel_acc"] == pytest.approx(np.diag(hist)[scored].sum() / sub.sum())
    assert trainer.callback_metrics["val/geometric/pixel_acc"].item() == pytest.approx(np.trace(geo) / geo.sum())
    assert trainer.callback_metrics["val/mean_iu"].item() == pytest.approx(np.nanmean(iu[scored]))


def test_excluded_classes_must_name_a_head():
    with pytest.raises(ValueError, match="geometry"):
        tiny_module(num_classes=6, excluded_classes={"geometry": [1]})


def test_fixed_features_trains_only_the_score_layer():
    module = tiny_module(num_classes=4, fixed_features=True)
    learning = [name for name, p in module.net.named_parameters() if p.requires_grad]
    assert learning == ["head.score_fr.weight", "head.score_fr.bias"]
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    optimizer = build_optimizer(module.net, lr=0.1)
    module.train()
    loss = torch.nn.functional.cross_entropy(module(torch.randn(2, 3, 32, 32)), torch.randint(0, 4, (2, 32, 32)))
    loss.backward()
    optimizer.step()
    after = module.net.state_dict()
    changed = {k for k in before if k.endswith(("weight", "bias")) and not torch.equal(before[k], after[k])}
    assert changed == {"head.score_fr.weight", "head.score_fr.bias"}


def test_transplant_from_a_32s_checkpoint_keeps_its_weights_and_zero_skips(tmp_path):
    fcn32s = tiny_module(num_classes=4)
    randomize_scores(fcn32s)
    path = tmp_path / "fcn32s.ckpt"
    torch.save({"hyper_parameters": dict(fcn32s.hparams), "state_dict": fcn32s.state_dict()}, path)
    fcn16s = tiny_module(stride=16, num_classes=4)
    fcn16s.transplant_from(path)
    theirs, mine = fcn32s.net.state_dict(), fcn16s.net.state_dict()
    shared = theirs.keys() & mine.keys()
    assert "head.score_fr.weight" in shared and len(shared) == len(theirs) - 1  # all but upscore
    for key in shared:
        assert torch.equal(mine[key], theirs[key]), key
    assert not fcn16s.net.head.score_pool4.weight.any()


@pytest.mark.parametrize(
    "lr, normalize, advice",
    [(1e-4, False, "1e-10"), (1e-10, True, "do not match"), (1e-2, True, "lower model.optimizer.lr")],
)
def test_nan_advice_names_lr_and_loss_normalization(lr, normalize, advice):
    message = likely_cause(lr, normalize)
    assert advice in message and f"{lr:g}" in message and "normalize" in message


def test_atomic_save_leaves_the_previous_checkpoint_whole_when_saving_fails(tmp_path):
    io_plugin = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io_plugin.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)
    with pytest.raises(Exception):
        io_plugin.save_checkpoint({"epoch": 2, "bad": lambda: None}, path)  # not picklable mid-write
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def test_random_states_survive_a_weights_only_checkpoint():
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    buffer = io.BytesIO()
    torch.save({"rng_states": rng_states()}, buffer)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    buffer.seek(0)
    set_rng_states(torch.load(buffer, weights_only=True)["rng_states"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]
