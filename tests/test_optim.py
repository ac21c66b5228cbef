"""Parameter groups, the heavy recipe's SGD step against a hand-written update, LR schedules."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from fcn_lit.training.losses import segmentation_loss
from fcn_lit.training.optim import build_optimizer, build_scheduler


class TinyFCN(nn.Module):
    """A BatchNorm, a scoring conv and a frozen upsampling (BatchNorm after the conv would leave
    its bias without gradient)."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3)
        self.score = nn.Conv2d(3, 4, 3, padding=1)
        self.upscore = nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1, bias=False)
        self.upscore.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upscore(self.score(self.bn(x)))


def test_heavy_recipe_two_sgd_steps_match_a_hand_written_update() -> None:
    """SGD m 0.99, wd 5e-4, lr 1e-10, summed loss; biases 2x lr, no decay; upsampling frozen."""
    torch.manual_seed(0)
    net = TinyFCN().double()
    lr, momentum, wd = 1e-10, 0.99, 5e-4
    optimizer = build_optimizer(net, lr=lr, momentum=momentum, weight_decay=wd)
    hyper = {  # name -> (lr, weight decay), written out by hand
        "score.weight": (lr, wd),
        "score.bias": (2 * lr, 0.0),
        "bn.weight": (lr, 0.0),
        "bn.bias": (2 * lr, 0.0),
    }
    params = dict(net.named_parameters())
    upscore_before = net.upscore.weight.clone()
    image = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 16, 16))
    target[:, :3] = 255
    buffers: dict[str, torch.Tensor] = {}
    for step in range(2):
        optimizer.zero_grad()
        segmentation_loss(net(image), target, normalize=False).backward()
        before = {name: params[name].detach().clone() for name in hyper}
        expected = {}
        for name, (param_lr, param_wd) in hyper.items():
            d_p = params[name].grad + param_wd * params[name].detach()
            buffers[name] = d_p if step == 0 else momentum * buffers[name] + d_p
            expected[name] = -param_lr * buffers[name]
        optimizer.step()
        for name in hyper:
            update = params[name].detach() - before[name]
            assert update.abs().max() > 0, name
            # atol: a few float64 ulps of the weights; the decay terms (~1e-14) are far above it
            torch.testing.assert_close(
                update,
                expected[name],
                rtol=1e-9,
                atol=1e-16,
                msg=lambda m, name=name: f"{name}: {m}",
            )
    assert torch.equal(net.upscore.weight, upscore_before)
    assert net.upscore.weight.grad is None


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_groups_leave_out_frozen_parameters(name: str) -> None:
    net = TinyFCN()
    optimizer = build_optimizer(net, name=name, lr=1e-3, weight_decay=1e-4, bias_decay=True)
    groups = {
        g["name"]: ({id(p) for p in g["params"]}, g["lr"], g["weight_decay"])
        for g in optimizer.param_groups
    }
    assert groups == {
        "weights": ({id(net.score.weight)}, 1e-3, 1e-4),
        "biases": ({id(net.score.bias), id(net.bn.bias)}, 2e-3, 1e-4),
        "norm_scales": ({id(net.bn.weight)}, 1e-3, 0.0),
    }
    assert isinstance(optimizer, {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}[name])


def test_takes_a_hydra_dict() -> None:
    spec = OmegaConf.create(
        {"name": "adamw", "lr": 1e-4, "betas": [0.8, 0.9], "weight_decay": 0.01}
    )
    optimizer = build_optimizer(TinyFCN(), **spec)
    assert optimizer.defaults["betas"] == (0.8, 0.9)


def test_unknown_keys_and_names_are_named() -> None:
    with pytest.raises(
        ValueError, match=r"\['momentun'\]; accepted keys: \['lr', 'name', 'momentum'"
    ):
        build_optimizer(TinyFCN(), lr=1e-3, momentun=0.9)
    with pytest.raises(ValueError, match="model.optimizer.name='adam'"):
        build_optimizer(TinyFCN(), lr=1e-3, name="adam")
    optimizer = build_optimizer(TinyFCN(), lr=1e-3)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['gamma'\]"):
        build_scheduler(optimizer, 10, name="poly", gamma=0.1)
    with pytest.raises(ValueError, match="total_steps=0"):
        build_scheduler(optimizer, 0, name="poly")


def scheduled_lrs(steps: int, **spec) -> list[list[float]]:
    optimizer = build_optimizer(TinyFCN(), lr=0.01)
    scheduler = build_scheduler(optimizer, **spec)
    lrs = []
    for _ in range(steps):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return lrs


def test_poly_schedule_follows_the_formula() -> None:
    total, power = 10, 0.9
    for step, (weights_lr, biases_lr, norm_lr) in enumerate(
        scheduled_lrs(12, total_steps=total, name="poly")
    ):
        expected = 0.01 * max(0.0, 1 - step / total) ** power
        assert weights_lr == pytest.approx(expected, abs=1e-15)
        assert biases_lr == pytest.approx(2 * expected, abs=1e-15)
        assert norm_lr == pytest.approx(expected, abs=1e-15)


def test_fixed_schedule_with_linear_warmup() -> None:
    lrs = [weights_lr for weights_lr, _, _ in scheduled_lrs(6, total_steps=100, warmup_steps=4)]
    assert lrs == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])
