"""What every trainer config composes to, and what it resolves to on a machine without GPUs and on
one with 4 GPUs (with and without bf16): the flagship `python train.py model=fcn16s data=voc_sbd
trainer.devices=4` trains on 4 GPUs with DDP in bf16, and stops at once without GPUs."""

import logging

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from runconfig import compose_config

from fcn_lit.training import devices
from fcn_lit.training.devices import DeviceError, check_devices, resolve_trainer
from fcn_lit.models import build_fcn
from fcn_lit.training.train import train

FLAGSHIP = ["model=fcn16s", "data=voc_sbd", "trainer.devices=4"]
KEYS = ("accelerator", "strategy", "precision", "devices", "sync_batchnorm")

# trainer config -> composed (accelerator, strategy, precision, devices, sync_batchnorm)
COMPOSED = {
    "default": ("auto", "auto", "auto", 1, "auto"),
    "cpu": ("cpu", "auto", "32-true", 1, "auto"),
    "gpu": ("gpu", "auto", "auto", 1, "auto"),
    "ddp": ("gpu", "ddp", "auto", 4, "auto"),
    "ddp_cpu": ("cpu", "ddp", "32-true", 2, "auto"),
}
# ... resolved (accelerator, strategy, precision, devices) on 4 GPUs with bf16, and without GPUs (None:
# stops); sync_batchnorm resolves to true exactly for several GPU processes and a trunk with BatchNorm.
ON_GPUS = {
    "default": ("gpu", "auto", "bf16-mixed", 1),
    "cpu": ("cpu", "auto", "32-true", 1),
    "gpu": ("gpu", "auto", "bf16-mixed", 1),
    "ddp": ("gpu", "ddp", "bf16-mixed", 4),
    "ddp_cpu": ("cpu", "ddp", "32-true", 2),
}
ON_CPU = {
    "default": ("cpu", "auto", "32-true", 1),
    "cpu": ("cpu", "auto", "32-true", 1),
    "gpu": None,
    "ddp": None,
    "ddp_cpu": ("cpu", "ddp", "32-true", 2),
}


def nets():
    plain = build_fcn("vgg16", 16, 21, width=1 / 16)
    batchnorm = build_fcn("vgg16", 16, 21, width=1 / 16, norm="batch")
    return plain, batchnorm


def settings(trainer):
    return tuple(trainer.get(k) for k in KEYS)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def four_gpus(monkeypatch):
    """What the resolution sees on a machine with 4 GPUs; bf16 support is set per test."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    return monkeypatch


def test_the_flagship_command_composes_auto_and_resolves_to_four_gpus_ddp_bf16(tmp_path, four_gpus):
    cfg = compose_config(tmp_path, FLAGSHIP)
    assert settings(cfg.trainer) == ("auto", "auto", "auto", 4, "auto")
    plain, batchnorm = nets()
    resolved = resolve_trainer(cfg.trainer, plain)
    assert settings(cfg.trainer) == ("gpu", "ddp", "bf16-mixed", 4, False)  # VGG16 has no BatchNorm
    assert resolved["processes"] == 4
    cfg = compose_config(tmp_path, [*FLAGSHIP, "model/backbone=vgg16_tiny"])
    resolve_trainer(cfg.trainer, batchnorm)
    assert settings(cfg.trainer) == ("gpu", "ddp", "bf16-mixed", 4, True)


def test_gpus_without_bf16_train_in_fp32_and_say_so(tmp_path, four_gpus, caplog):
    four_gpus.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    cfg = compose_config(tmp_path, FLAGSHIP)
    with caplog.at_level(logging.INFO, logger=devices.__name__):
        resolve_trainer(cfg.trainer, nets()[0])
    assert cfg.trainer.precision == "32-true"
    assert "Tesla V100" in caplog.text and "fp32" in caplog.text and "precision=32-true" in caplog.text


def test_without_gpus_the_flagship_stops_at_once_naming_the_cpu_configs(tmp_path, no_gpu):
    cfg = compose_config(tmp_path / "run", [*FLAGSHIP, f"paths.data_dir={tmp_path / 'nowhere'}"])
    with pytest.raises(DeviceError) as error:
        train(cfg)
    assert "trainer=cpu" in str(error.value) and "trainer=ddp_cpu" in str(error.value)
    assert "trainer.devices=4" in str(error.value)
    assert not (tmp_path / "run").exists()  # before the data, the net or the run directory


@pytest.mark.parametrize("option", sorted(COMPOSED))
def test_every_trainer_config_composes_and_resolves(option, tmp_path, monkeypatch):
    cfg = compose_config(tmp_path, [f"trainer={option}"])
    assert settings(cfg.trainer) == COMPOSED[option]
    assert cfg.trainer.num_nodes == 1  # set as `trainer.num_nodes=N` (torchrun --nnodes=N, SLURM)
    plain, batchnorm = nets()
    for available, expected in ((False, ON_CPU[option]), (True, ON_GPUS[option])):
        monkeypatch.setattr(torch.cuda, "is_available", lambda available=available: available)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "GPU")
        if expected is None:
            with pytest.raises(DeviceError, match="trainer=ddp_cpu"):
                check_devices(compose_config(tmp_path, [f"trainer={option}"]).trainer)
            continue
        for net in (plain, batchnorm):
            trainer = compose_config(tmp_path, [f"trainer={option}"]).trainer
            resolve_trainer(trainer, net)
            sync = expected[0] == "gpu" and expected[3] > 1 and net is batchnorm
            assert settings(trainer) == (*expected, sync), (option, available)


@pytest.mark.parametrize("option", ["default", "cpu", "ddp_cpu"])
def test_resolved_cpu_trainers_build_a_lightning_trainer(option, tmp_path, no_gpu):
    cfg = compose_config(tmp_path, [f"trainer={option}"])
    resolve_trainer(cfg.trainer, nets()[1])
    trainer: L.Trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer.num_devices == cfg.trainer.devices
    assert type(trainer.strategy).__name__ == ("DDPStrategy" if option == "ddp_cpu" else "SingleDeviceStrategy")
    assert trainer.precision == "32-true"


def test_under_torchrun_the_trainer_must_match_the_processes_started(tmp_path, monkeypatch):
    """`torchrun --nnodes=2 --nproc_per_node=1` with ddp_cpu's trainer.devices=2 stops before the data, naming the fix."""
    for name, value in {"RANK": "1", "GROUP_RANK": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
                        "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "fcn"}.items():
        monkeypatch.setenv(name, value)
    for overrides, fix in ((["trainer.num_nodes=2"], "trainer.devices=1 trainer.num_nodes=2"),
                           (["trainer.devices=1"], "trainer.devices=1 trainer.num_nodes=2")):
        cfg = compose_config(tmp_path, ["trainer=ddp_cpu", *overrides])
        with pytest.raises(DeviceError, match="--nproc_per_node=1 --nnodes=2") as error:
            check_devices(cfg.trainer)
        assert str(error.value).endswith(f"set {fix}")
    check_devices(compose_config(tmp_path, ["trainer=ddp_cpu", "trainer.devices=1", "trainer.num_nodes=2"]).trainer)
