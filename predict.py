"""Segment images: `python predict.py ckpt_path=... input=<image, folder or glob> output=<dir>`."""

import hydra
from omegaconf import DictConfig, OmegaConf

from fcn_lit.predict import predict


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    written = predict(
        cfg.ckpt_path, cfg.input, cfg.output, batch_size=cfg.batch_size, num_workers=cfg.num_workers,
        probabilities=cfg.probabilities, alpha=cfg.alpha, device=cfg.device, normalization=cfg.normalization,
        speed_options=OmegaConf.to_container(cfg.speed),
    )
    print(f"Wrote {len(written)} files to {cfg.output}")


if __name__ == "__main__":
    main()
