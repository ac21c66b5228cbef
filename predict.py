"""Segment images: `python predict.py ckpt_path=... input=<image, folder or glob> output=<dir>`.
Exits with status 1 when some images could not be read (listed last); every other one is segmented."""


import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from fcn_lit.cli import exit_on_user_error
from fcn_lit.inference.predict import UnreadableImages, predict


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    failure = None
    try:
        with exit_on_user_error():
            written = predict(
                cfg.ckpt_path, cfg.input, cfg.output, format=cfg.format,
                data=OmegaConf.to_container(cfg.data) if cfg.get("data") else None,
                batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                probabilities=cfg.probabilities, alpha=cfg.alpha, device=cfg.device, normalization=cfg.normalization,
                speed_options=OmegaConf.to_container(cfg.speed),
                tiling=OmegaConf.to_container(cfg.tiling), tta=OmegaConf.to_container(cfg.tta),
            )
    except UnreadableImages as error:
        written, failure = error.written, error
    print(f"Wrote {len(written)} files to {cfg.output}")
    if failure:
        print(failure, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
