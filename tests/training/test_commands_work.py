"""Commands and patterns that used to break (issue 13): logger=none, best.ckpt, Hydra's in-process
compose pattern, a sweep trial without a checkpoint score, ddp_spawn's test results, eval on
voc_sbd with VOC alone."""

import logging
import math

import numpy as np
import optuna
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict
from PIL import Image
from runconfig import CONF_DIR, TINY, compose_config

from fcn_lit.experiments import sweeps
from fcn_lit.data.palette import save_index_png
from fcn_lit.inference.evaluate import evaluate
from fcn_lit.experiments.sweeps import sweep_objective
from fcn_lit.training.train import train


@pytest.mark.slow
def test_a_run_without_a_logger_keeps_its_best_checkpoint_as_best_ckpt(tiny_cfg, capsys):
    cfg = tiny_cfg("logger=none", "callbacks=default", "trainer.max_epochs=2")
    assert not cfg.logger and "learning_rate_monitor" in cfg.callbacks
    results = train(cfg)
    run_dir = cfg.paths.output_dir
    assert results["checkpoint"] == f"{run_dir}/checkpoints/best.ckpt"
    state = torch.load(results["checkpoint"], weights_only=True)["callbacks"]
    (best,) = [s["best_model_score"] for k, s in state.items() if "val/mean_iu" in k]
    assert results["best_val_mean_iu"] == pytest.approx(best.item())
    assert results["test"]["mean_iu"] >= 0 and "LearningRateMonitor" in capsys.readouterr().out
    assert not list(__import__("pathlib").Path(run_dir).glob("csv"))


@pytest.mark.slow
def test_lightning_hydra_template_pattern_and_a_trial_without_checkpoint_score(tmp_path):
    """compose(return_hydra_config=True) + HydraConfig().set_config(cfg) + train(cfg), with
    trainer.fast_dev_run=true: no checkpoint is scored, the sweep objective is the last val mean IU."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, f"data.root={tmp_path / 'data'}", "trainer.fast_dev_run=true"],
                      return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.paths.log_dir = str(tmp_path / "logs")
    results = train(cfg)
    assert "hydra" not in OmegaConf.load(tmp_path / "run" / "config.yaml")
    assert results.get("best_val_mean_iu") is None and 0.0 <= results["last_val_mean_iu"] <= 1.0
    assert sweep_objective(results) == results["last_val_mean_iu"]


@pytest.mark.parametrize("search", ["quickstart_optuna", "voc_optuna"])
def test_a_trial_that_never_validated_fails_alone(search, caplog):
    """NaN, not None: Optuna refuses it, the sweeper records the trial as failed, and with
    max_failure_rate 1.0 the sweep goes on."""
    with caplog.at_level(logging.WARNING, logger=sweeps.__name__):
        value = sweep_objective({"run_dir": "logs/x/multiruns/t/3"})
    assert math.isnan(value) and "logs/x/multiruns/t/3" in caplog.text
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize")
    with pytest.raises(ValueError, match="nan"):  # what the sweeper catches, then tells FAIL
        study.tell(study.ask(), value)
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"hparams_search={search}"], return_hydra_config=True)
    assert cfg.hydra.sweeper.max_failure_rate == 1.0


@pytest.mark.slow
def test_ddp_spawn_reports_the_test_scores_of_the_spawned_processes(tiny_cfg):
    cfg = tiny_cfg("trainer=ddp_cpu", "trainer.strategy=ddp_spawn", "num_pictures=0", "logger=none")
    results = train(cfg)
    assert set(results["test"]["per_class_iu"]) == {"background", "disk", "box", "triangle", "ring", "ellipse"}
    confmat = torch.tensor(results["test"]["confusion_matrix"], dtype=torch.float64)
    assert results["test"]["pixel_acc"] == pytest.approx((confmat.diag().sum() / confmat.sum()).item())
    # Lightning hands back the best checkpoint's path, not its score: the objective is the last val mean IU.
    assert sweep_objective(results) == pytest.approx(results["last_val_mean_iu"])
    assert results["checkpoint"].endswith("checkpoints/best.ckpt")


def tiny_voc(root, split: str, count: int = 3):
    """A VOC2012 folder with ``count`` 32x32 images and palette masks listed in ``split``."""
    rng = np.random.default_rng(0)
    ids = [f"2011_{i:06d}" for i in range(count)]
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for sample in ids:
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{sample}.jpg")
        save_index_png(root / "SegmentationClass" / f"{sample}.png", rng.integers(0, 21, (32, 32), dtype=np.uint8))
    (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


def test_eval_on_voc_sbd_needs_only_voc(tmp_path):
    """The paper's setting scores VOC's seg11valid: SBD (the train split) may be absent."""
    voc = tiny_voc(tmp_path / "VOCdevkit" / "VOC2012", "seg11valid")
    run = compose_config(tmp_path / "run", [*TINY])
    module = instantiate(run.model, num_classes=21, class_names=[f"c{i}" for i in range(21)])
    ckpt = tmp_path / "best.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, ckpt)
    cfg = compose_config(tmp_path / "eval", ["data=voc_sbd", f"data.root={voc}",
                                             f"data.train_dataset.root={tmp_path / 'no_sbd'}",
                                             f"ckpt_path={ckpt}", "data.num_workers=0"], config_name="eval")
    results = evaluate(cfg)
    assert results["data"] == "voc_sbd" and results["split"] == "seg11valid"
    assert 0.0 <= results["test"]["pixel_acc"] <= 1.0
