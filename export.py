"""Export a trained FCN: `python export.py ckpt_path=... output=fcn8s` -> fcn8s.onnx, fcn8s.pt
(`quantize=int8`: and fcn8s.int8.onnx)."""

import hydra
from omegaconf import DictConfig

from fcn_lit.cli import exit_on_user_error
from fcn_lit.inference.export import export


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        for path in export(cfg.ckpt_path, cfg.output, tuple(cfg.formats), example_size=cfg.example_size,
                           opset=cfg.opset, quantize=cfg.quantize, calibration=cfg.calibration,
                           calibration_images=cfg.calibration_images):
            print(f"Wrote {path}")


if __name__ == "__main__":
    main()
