"""Launcher and sweeper configs compose; the search space names real keys; multirun + DDP is refused."""

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict
from runconfig import CONF_DIR

from sweeprun import TINY_SWEEP, run_script
from fcn_lit.experiments.sweeps import MultirunDDPError, check_multirun_ddp


def compose_with_hydra(*overrides: str):
    """Compose as `python train.py` would, keeping the hydra node (launcher, sweeper, mode)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_local_parallel_launcher_is_joblib():
    cfg = compose_with_hydra("hydra/launcher=local_parallel")
    assert cfg.hydra.launcher._target_.endswith("joblib_launcher.JoblibLauncher")
    assert cfg.hydra.launcher.n_jobs == 2


def test_slurm_launcher_starts_one_task_per_gpu():
    cfg = compose_with_hydra("hydra/launcher=slurm", "trainer=ddp", "trainer.devices=8", "trainer.num_nodes=2")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (8, 8, 2)


# trainer config -> the SLURM request (nodes, tasks per node, GPUs per node): no GPUs on the CPU.
SLURM_REQUESTS = {"default": (1, 1, 1), "cpu": (1, 1, None), "gpu": (1, 1, 1), "ddp": (1, 4, 4), "ddp_cpu": (1, 2, None)}


@pytest.mark.parametrize("option", sorted(SLURM_REQUESTS))
def test_the_slurm_launcher_composes_with_every_trainer(option):
    for nodes in (1, 3):
        cfg = compose_with_hydra("hydra/launcher=slurm", f"trainer={option}", f"trainer.num_nodes={nodes}")
        launcher = cfg.hydra.launcher
        expected = (nodes, *SLURM_REQUESTS[option][1:])
        assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == expected


@pytest.mark.parametrize("search", ["voc_optuna", "quickstart_optuna"])
def test_optuna_search_space_names_existing_keys(search):
    cfg = compose_with_hydra(f"hparams_search={search}", "experiment=quickstart")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("optuna_sweeper.OptunaSweeper")
    assert sweeper.direction == "maximize" and cfg.hydra.mode.name == "MULTIRUN"
    for key in sweeper.params:
        assert OmegaConf.select(cfg, key, default="missing") != "missing", f"{search}: {key} is not a config key"


def _multirun(*overrides: str):
    cfg = compose_with_hydra("hydra.mode=MULTIRUN", *overrides)
    with open_dict(cfg):
        del cfg.hydra
    return cfg


def test_multirun_with_lightning_started_ddp_is_refused():
    with pytest.raises(MultirunDDPError, match="torchrun"):
        check_multirun_ddp(_multirun("trainer=ddp_cpu"))


@pytest.mark.parametrize("override", ["trainer.devices=1", "trainer.strategy=ddp_spawn"])
def test_multirun_without_relaunching_ddp_is_allowed(override):
    check_multirun_ddp(_multirun("trainer=ddp_cpu", override))


def test_multirun_under_torchrun_is_allowed(monkeypatch):
    for name, value in {"RANK": "0", "GROUP_RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2",
                        "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "x"}.items():
        monkeypatch.setenv(name, value)
    check_multirun_ddp(_multirun("trainer=ddp_cpu"))


def test_single_run_ddp_is_not_checked():
    cfg = compose_with_hydra("trainer=ddp_cpu")
    with open_dict(cfg):
        del cfg.hydra
    check_multirun_ddp(cfg)


@pytest.mark.slow
def test_train_multirun_ddp_fails_at_once_with_the_alternative(tmp_path):
    result = run_script("train.py", "-m", "trainer=ddp_cpu", f"hydra.sweep.dir={tmp_path}", check=False)
    assert result.returncode != 0
    assert "torchrun" in result.stderr and "ddp_spawn" in result.stderr
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("metrics.json"))


@pytest.mark.slow
def test_two_trial_optuna_sweep_returns_the_best_validation_mean_iu(tmp_path):
    sweep_dir = tmp_path / "optuna"
    run_script("train.py", "hparams_search=quickstart_optuna", "hydra.sweeper.n_trials=2",
               *(o for o in TINY_SWEEP if not o.startswith("model.optimizer.lr")),
               "model/backbone=vgg16", "trainer.max_epochs=1", f"data.root={tmp_path / 'synthetic'}",
               f"hydra.sweep.dir={sweep_dir}")
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    trials = [yaml.safe_load((sweep_dir / str(i) / "metrics.json").read_text()) for i in range(2)]
    assert best["best_value"] == pytest.approx(max(t["best_val_mean_iu"] for t in trials))
    lrs = [OmegaConf.load(sweep_dir / str(i) / "config.yaml").model.optimizer.lr for i in range(2)]
    assert lrs[0] != lrs[1] and all(3e-4 <= lr <= 1e-2 for lr in lrs)
