"""Any timm model as an FCN trunk (``model/backbone=timm model.backbone.name=convnext_tiny``).

timm builds the model with ``features_only=True``; its last three feature levels must sit at
reductions 8, 16 and 32 (timm's feature info), and they become the taps the paper's skip heads
read, as pool3, pool4 and fc7 are for VGG16. ImageNet weights come through timm (its Hugging Face
or URL cache), the input preprocessing from the model's pretrained config.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from fcn_lit.models.alignment import Coord
from fcn_lit.models.backbones import TAPS

WEIGHTS_SOURCE = "timm"


def _timm():
    import timm  # imported on use: the built-in trunks do not need it

    return timm


def pretrained_cfg(name: str):
    """timm's pretrained config of ``name`` (``convnext_tiny`` or with a tag, ``convnext_tiny.fb_in1k``);
    read from timm's registry, without building the model or going online."""
    timm = _timm()
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        known = timm.list_models(f"*{name.split('.')[0][:6]}*")[:8]
        raise ValueError(f"model.backbone.name={name!r} is not a timm model with pretrained weights "
                         f"(similar names: {known}); list them with timm.list_models()")
    return cfg


def weights_file_hint(name: str) -> str:
    """Where timm downloads ``name``'s weights from: the file to fetch by hand when offline."""
    cfg = pretrained_cfg(name)
    if cfg.hf_hub_id:
        filename = cfg.hf_hub_filename or "model.safetensors"
        return f"https://huggingface.co/{cfg.hf_hub_id}/resolve/main/{filename}"
    return cfg.url or f"(timm lists no download for {name})"


class TimmTrunk(nn.Module):
    """A timm ``features_only`` model's levels at strides 8, 16 and 32: ``forward`` returns
    ``{8: ..., 16: ..., 32: ...}`` like ``backbones.Trunk``.

    Coordinates come from timm's feature info: a level of reduction ``r`` has one pixel per
    ``r x r`` cell of the input, centred in it (``Coord(r, (r - 1) / 2)``, the aligned mode). The
    input is padded on the bottom and right to a multiple of 32 (with 0: the weights' mean pixel
    after normalisation), so every level has exactly H/r rows and the heads cover any image size.
    """

    def __init__(self, name: str, *, pretrained: bool = False, in_channels: int = 3, weights_path: str | None = None):
        super().__init__()
        timm = _timm()
        options = dict(features_only=True, out_indices=(-3, -2, -1), in_chans=in_channels)
        if pretrained and weights_path:
            options["pretrained_cfg_overlay"] = {"file": str(weights_path)}
        try:
            self.body = timm.create_model(name, pretrained=pretrained, **options)
        except RuntimeError as error:
            if "Unknown model" in str(error):
                raise ValueError(f"model.backbone.name={name!r} is not a timm model; list them with "
                                 "timm.list_models()") from error
            raise
        except (OSError, ValueError) as error:  # offline: huggingface_hub / urllib errors are OSErrors
            if not pretrained:
                raise
            raise FileNotFoundError(
                f"could not get timm's ImageNet weights for {name} ({type(error).__name__}: {error}). Offline, "
                f"download {weights_file_hint(name)} elsewhere and pass model.backbone.weights_path=<that file>, "
                "or use model.backbone.pretrained=false."
            ) from error
        reductions = list(self.body.feature_info.reduction())
        if tuple(reductions) != TAPS:
            raise ValueError(f"timm model {name!r} has its last feature levels at reductions {reductions}; an FCN "
                             f"trunk needs {list(TAPS)} (a convolutional net with features_only: ResNets, ConvNeXts, "
                             "EfficientNets, RegNets, ...)")
        self.channels = dict(zip(TAPS, self.body.feature_info.channels()))
        self.coords = {r: Coord(r, (r - 1) / 2) for r in TAPS}

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        height, width = x.shape[-2:]
        multiple = TAPS[-1]
        x = F.pad(x, (0, -width % multiple, 0, -height % multiple))
        return dict(zip(TAPS, self.body(x)))
