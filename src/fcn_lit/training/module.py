"""The LightningModule: an FCN, its per-pixel loss, the paper's four metrics per split."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from fcn_lit.data.check import check_dataset, median_frequency_weights
from fcn_lit.metrics import SegmentationMetrics
from fcn_lit.models import PRIMARY_HEAD, build_fcn, transplant
from fcn_lit.training.checkpointing import CheckpointError, load_checkpoint
from fcn_lit.training.losses import segmentation_loss
from fcn_lit.training.optim import apply_configured_settings, build_optimizer, build_scheduler

MEDIAN_FREQUENCY = "median_frequency"


class FCNModule(L.LightningModule):
    """Trains and scores one FCN. Every argument is plain data (dicts, lists, numbers, strings), so
    checkpoints load with ``torch.load(weights_only=True)`` and rebuild the net from them alone.

    Multi-head nets (SIFT Flow) are described by ``task_heads`` ({head: classes}); their losses are
    summed and each head gets its own metrics, logged as ``<stage>/<head>/<metric>`` (SIFT Flow's
    geometric accuracy: ``val/geometric/pixel_acc``). ``excluded_classes`` ({head: [class, ...]})
    leaves classes out of scoring (SIFT Flow's cow, desert and moon). ``fixed_features`` trains the
    score layers only, the trunk and upsampling frozen (FCN-32s-fixed, CVPR Table 2).
    """

    def __init__(
        self,
        net: dict[str, Any],
        backbone: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any],
        num_classes: int,
        class_names: list[str] | None = None,
        task_heads: dict[str, int] | None = None,
        ignore_index: int = 255,
        excluded_classes: dict[str, list[int]] | None = None,
        fixed_features: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.heads = dict(task_heads or {PRIMARY_HEAD: num_classes})
        self.net = build_fcn(
            backbone=backbone["name"],
            pretrained=backbone.get("pretrained", False),
            num_classes=num_classes,
            heads=task_heads,
            **{k: v for k, v in backbone.items() if k not in ("name", "pretrained")},
            **net,
        )
        if fixed_features:
            freeze_all_but_scores(self.net)
        excluded = excluded_classes or {}
        unknown = sorted(excluded.keys() - self.heads.keys())
        if unknown:
            raise ValueError(f"excluded_classes names head(s) {unknown}; the net's heads are {list(self.heads)}")

        def metric(head: str, n: int) -> SegmentationMetrics:
            scored = [c for c in range(n) if c not in excluded.get(head, ())] if head in excluded else None
            return SegmentationMetrics(n, ignore_index=ignore_index, score_classes=scored)

        self.metrics = nn.ModuleDict({
            stage: nn.ModuleDict({head: metric(head, n) for head, n in self.heads.items()})
            for stage in ("val", "test")
        })
        self.results: dict[str, dict[str, Any]] = {}
        self.balanced_weights: dict[str, list[float]] = {}

    def forward(self, image: Tensor) -> Tensor | dict[str, Tensor]:
        return self.net(image)

    def _per_head(self, outputs: Tensor | dict[str, Tensor], target: Tensor | dict[str, Tensor]):
        if isinstance(outputs, Tensor):
            outputs, target = {PRIMARY_HEAD: outputs}, {PRIMARY_HEAD: target}
        return [(head, outputs[head], target[head]) for head in self.heads]

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.loss.get("class_weights") == MEDIAN_FREQUENCY and not self.balanced_weights:
            self.balanced_weights = self.count_class_weights()

    def count_class_weights(self) -> dict[str, list[float]]:
        """Median frequency weights of each head from the training split's class pixels
        (``python -m fcn_lit.data.check`` prints the same)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            raise ValueError(f"model.loss.class_weights={MEDIAN_FREQUENCY} counts the training split's classes, "
                             "so it needs a data module (train.py gives one); or give the weights as a list")
        report = check_dataset(datamodule.build_dataset("train"), "training split", progress=False)
        return {head: median_frequency_weights(report.pixels[head][:n], report.image_pixels[head][:n])
                for head, n in self.heads.items()}

    def loss_options(self, head: str) -> dict[str, Any]:
        """model.loss for one head: median frequency weights resolved; weights given as a list
        belong to the primary head."""
        options = dict(self.hparams.loss)
        weights = options.pop("class_weights", None)
        if weights == MEDIAN_FREQUENCY:
            weights = self.balanced_weights.get(head) or self.count_class_weights()[head]
        elif head != PRIMARY_HEAD:
            weights = None
        return {**options, "class_weights": weights}

    def training_step(self, batch: tuple[Tensor, Any], batch_idx: int) -> Tensor:
        image, target = batch
        losses = {head: segmentation_loss(logits, t, ignore_index=self.hparams.ignore_index,
                                          **self.loss_options(head))
                  for head, logits, t in self._per_head(self(image), target)}
        loss = sum(losses.values())
        self.log("train/loss", loss, prog_bar=True, batch_size=image.shape[0])
        if len(losses) > 1:
            self.log_dict({f"train/{head}/loss": v for head, v in losses.items()}, batch_size=image.shape[0])
        return loss

    def _evaluate(self, stage: str, batch: tuple[Tensor, Any]) -> None:
        image, target = batch
        for head, logits, t in self._per_head(self(image), target):
            self.metrics[stage][head].update(logits, t)  # the metric takes the argmax itself, faster

    def validation_step(self, batch: tuple[Tensor, Any], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: tuple[Tensor, Any], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def _finish(self, stage: str) -> None:
        results = {}
        for head, metric in self.metrics[stage].items():
            scores = metric.compute()
            with metric.sync_context():  # the confusion matrix summed over DDP processes
                confmat = metric.confmat.clone()
            metric.reset()
            prefix = stage if head == PRIMARY_HEAD else f"{stage}/{head}"
            self.log_dict({f"{prefix}/{k}": v for k, v in scores.items() if v.ndim == 0},
                          prog_bar=head == PRIMARY_HEAD and stage == "val")
            # Under ddp_spawn the main process gets back the callback metrics only: the confusion
            # matrix rides along, and restore_results rebuilds the scores from it there.
            self.trainer.callback_metrics[f"{prefix}/confusion_matrix"] = confmat.cpu()
            results[head] = {**{k: v.tolist() for k, v in scores.items()}, "confusion_matrix": confmat.tolist()}
        self.results[stage] = results

    def restore_results(self, stage: str, callback_metrics: dict[str, Tensor]) -> None:
        """``results[stage]`` from the confusion matrices in ``callback_metrics``, for a stage that
        ran in spawned processes (trainer.strategy=ddp_spawn), where this module's hooks never ran."""
        results = {}
        for head, metric in self.metrics[stage].items():
            prefix = stage if head == PRIMARY_HEAD else f"{stage}/{head}"
            confmat = callback_metrics[f"{prefix}/confusion_matrix"]
            metric.confmat = confmat.to(metric.confmat)
            scores = metric.compute()
            metric.reset()
            results[head] = {**{k: v.tolist() for k, v in scores.items()}, "confusion_matrix": confmat.tolist()}
        self.results[stage] = results

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.net, **self.hparams.optimizer)
        scheduler = build_scheduler(optimizer, total_steps=self.trainer.estimated_stepping_batches,
                                    **self.hparams.scheduler)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_train_start(self) -> None:
        """A resumed fit trains with the config's optimizer settings, not the checkpoint's."""
        if self.trainer.ckpt_path:
            changes = apply_configured_settings(self.optimizers().optimizer, self.lr_schedulers(),
                                                build_optimizer(self.net, **self.hparams.optimizer))
            if changes:
                rank_zero_info("Resumed with the config's optimizer settings, not the checkpoint's: " + "; ".join(changes))

    @classmethod
    def from_checkpoint(cls, path: str | Path, **overrides: Any) -> FCNModule:
        """The module saved in a Lightning checkpoint (a path or URL), rebuilt from its plain-data
        hyperparameters (loaded with ``weights_only=True``); ``overrides`` replace saved hyperparameters."""
        checkpoint = load_checkpoint(path)
        if not is_lightning_checkpoint(checkpoint):
            raise CheckpointError(f"{path} is not a checkpoint written by train.py (no hyper_parameters and state_dict)")
        return cls.from_saved(checkpoint, **overrides)

    @classmethod
    def from_saved(cls, checkpoint: dict[str, Any], **overrides: Any) -> FCNModule:
        """The module of an already loaded Lightning checkpoint (see ``is_lightning_checkpoint``)."""
        module = cls(**{**checkpoint["hyper_parameters"], **overrides})
        module.load_state_dict(checkpoint["state_dict"])
        return module

    def transplant_from(self, init_from: str | Path | Mapping[str, str | Path]) -> None:
        """Start from the net of another stage's checkpoint (FCN-32s -> 16s -> 8s, Section 4.2):
        every shared layer is copied, the new skip score layers keep their zeros. A late-fusion
        net takes ``{stream: checkpoint}`` of single-stream runs (NYUDv2 RGB-HHA from the trained
        RGB and HHA FCN-32s, as the release's solve.py)."""
        if isinstance(init_from, Mapping):
            for stream, path in init_from.items():
                transplant(FCNModule.from_checkpoint(path).net, self.net, stream=stream)
        else:
            transplant(FCNModule.from_checkpoint(init_from).net, self.net)


def is_lightning_checkpoint(checkpoint: dict[str, Any]) -> bool:
    """A checkpoint written by train.py (rather than a pytorch-fcn state dict)."""
    return "state_dict" in checkpoint and "hyper_parameters" in checkpoint


def freeze_all_but_scores(net: nn.Module) -> None:
    """Freeze every parameter but those of the score layers (score_fr, score_pool4, score_pool3)."""
    for name, module in net.named_modules():
        learns = name.rsplit(".", 1)[-1].startswith("score")
        for param in module.parameters(recurse=False):
            param.requires_grad_(learns)
