"""Every config group composes; the documented commands compose; missing data fails fast."""

import pytest

from runconfig import CONF_DIR, compose_config
from fcn_lit.training.train import train


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


@pytest.mark.parametrize(
    "group", ["data", "model", "model/backbone", "trainer", "logger", "callbacks", "debug", "experiment"]
)
def test_every_option_of_every_group_composes(group, tmp_path):
    assert options(group), f"conf/{group} is empty"
    for option in options(group):
        cfg = compose_config(tmp_path, [f"{group}={option}"])
        assert cfg.model._target_ == "fcn_lit.training.module.FCNModule"
        assert cfg.data._target_ == "fcn_lit.data.SegmentationDataModule"


def test_missing_data_stops_before_the_net_and_the_trainer(tmp_path):
    cfg = compose_config(tmp_path / "run", ["model=fcn16s", "data=voc_sbd", "trainer=cpu",
                                            f"paths.data_dir={tmp_path / 'nowhere'}"])
    assert cfg.model.net.stride == 16 and cfg.data.name == "voc_sbd"
    with pytest.raises(FileNotFoundError) as error:
        train(cfg)
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message and "download" in message.lower()
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("stride", [32, 16, 8])
def test_model_configs_select_the_stride(stride, tmp_path):
    cfg = compose_config(tmp_path, [f"model=fcn{stride}s"])
    assert cfg.model.net.stride == stride


def test_paper_recipes_keep_the_release_alignment_and_new_runs_default_to_aligned(tmp_path):
    assert compose_config(tmp_path, []).model.net.alignment == "aligned"
    modern = {"quickstart", "voc_fcn8s_modern"}
    for recipe in set(options("experiment")) - modern:
        cfg = compose_config(tmp_path, [f"experiment={recipe}"])
        assert cfg.model.net.alignment == "caffe", recipe
