"""Train an FCN: `python train.py model=fcn8s data=voc_sbd trainer=gpu` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

from fcn_lit.cli import exit_on_user_error
from fcn_lit.config_check import check_config


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    # A mistake the user can fix ends in its message (e.g. offline: no weights, and what to type instead).
    with exit_on_user_error():
        check_config(cfg)  # before torch and Lightning are imported: a mistake is named in a second
        from fcn_lit.training.staged import train_staged
        from fcn_lit.experiments.sweeps import sweep_objective
        from fcn_lit.training.train import train

        # A config with stages (FCN-32s -> 16s -> 8s) runs one single run per stage.
        results = train_staged(cfg, train) if cfg.get("stages") else train(cfg)
    # Returned for sweepers (Optuna) that optimise the validation mean IU.
    return sweep_objective(results)


if __name__ == "__main__":
    main()
