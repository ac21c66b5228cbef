"""Score a checkpoint: `python eval.py ckpt_path=<.ckpt or pytorch-fcn .pth> data=voc_sbd` (conf/eval.yaml)."""

import hydra
from omegaconf import DictConfig

from fcn_lit.cli import exit_on_user_error
from fcn_lit.inference.evaluate import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        evaluate(cfg)


if __name__ == "__main__":
    main()
