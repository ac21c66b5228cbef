"""Weights & Biases: a logger that falls back to offline, named from the sweep, and a callback
that logs the per-class IU table and sample predictions as masks with class names.

`logger=wandb` selects both (conf/logger/wandb.yaml). Offline runs land in
``<run dir>/wandb/offline-run-*``; upload them later with ``wandb sync <that dir>``.
"""

from __future__ import annotations

import base64
import json
import logging
import netrc
import os
import socket
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from omegaconf import OmegaConf

from fcn_lit.experiments.sweeps import sweep_info
from fcn_lit.models import PRIMARY_HEAD

log = logging.getLogger(__name__)

DEFAULT_HOST = "https://api.wandb.ai"
# How long the server may take to answer before the run logs offline.
PROBE_TIMEOUT_S = 3.0


def _api_key(host: str) -> str | None:
    """WANDB_API_KEY, else the password of the host's ~/.netrc entry (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return os.environ["WANDB_API_KEY"]
    try:
        entry = netrc.netrc().authenticators(urlparse(host).hostname or host)
    except (FileNotFoundError, netrc.NetrcParseError):
        return None
    return entry[2] if entry else None


def _server_refusal(host: str, key: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when ``host`` answers W&B's "who am I" query with this key within ``timeout`` s; else what
    went wrong (refused, silent, an HTTP error, the key rejected). A TCP connection alone proves
    nothing: a proxy or a broken server accepts it, then stalls wandb.init for minutes. The request
    (DNS included) runs in a thread, so nothing can hold us past the timeout."""
    request = urllib.request.Request(
        f"{host.rstrip('/')}/graphql", data=json.dumps({"query": "query { viewer { id } }"}).encode(),
        headers={"Content-Type": "application/json",
                 "Authorization": "Basic " + base64.b64encode(f"api:{key}".encode()).decode()})
    outcome: list[str | None] = []

    def ask() -> None:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
            outcome.append(None)
        except urllib.error.HTTPError as error:
            rejected = " (the API key was rejected)" if error.code in (401, 403) else ""
            outcome.append(f"answered HTTP {error.code}{rejected}")
        except (OSError, ValueError) as error:  # refused, timed out, DNS, TLS, malformed URL
            reason = getattr(error, "reason", error)
            silent = isinstance(reason, TimeoutError | socket.timeout)
            outcome.append(f"did not answer within {timeout:g} s" if silent else f"is not reachable ({reason})")

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else f"did not answer within {timeout:g} s"


def resolve_mode(offline: bool | None) -> tuple[str, str]:
    """(wandb mode, why): WANDB_MODE wins, then ``offline``; with neither, online only when an API
    key is configured and the server answers an authenticated request within PROBE_TIMEOUT_S."""
    env = os.environ.get("WANDB_MODE")
    if env:
        return ("offline" if env == "dryrun" else env), f"WANDB_MODE={env}"
    if offline is not None:
        return ("offline" if offline else "online"), f"logger.wandb.offline={offline}"
    host = os.environ.get("WANDB_BASE_URL", DEFAULT_HOST)
    key = _api_key(host)
    if not key:
        return "offline", "no WANDB_API_KEY and no netrc entry (run `wandb login` to go online)"
    refusal = _server_refusal(host, key)
    if refusal:
        return "offline", f"{host} {refusal}"
    return "online", f"API key accepted by {host}"


class ResilientWandbLogger(WandbLogger):
    """A WandbLogger whose failure to start a run (network, auth) falls back to offline mode
    instead of failing the training run."""

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        try:
            return super().experiment
        except Exception as error:  # wandb raises many kinds; none of them may stop training
            if self._wandb_init.get("mode") == "offline":
                raise
            log.warning("W&B could not start an online run (%s); logging offline instead.", error)
            self._wandb_init["mode"] = "offline"
            return super().experiment

    def continue_from(self, step: int) -> None:
        """A resume logs to the run directory's previous W&B run (same id; Lightning passes resume="allow")."""
        latest = Path(self._wandb_init.get("dir") or ".") / "wandb" / "latest-run"
        # The folder's name can end in wandb's "-1" (two starts in one second): the id is the record's.
        records = sorted(latest.glob("run-*.wandb")) if latest.is_dir() else []
        if records:
            run_id = records[0].name.removeprefix("run-").removesuffix(".wandb")
            self._wandb_init["id"] = self._id = run_id
            log.info("W&B: continuing run %s", run_id)


def wandb_logger(
    identity: dict[str, Any],
    tags: list[str] | None = None,
    name: str | None = None,
    group: str | None = None,
    offline: bool | None = None,
    log_model: bool | str = False,
    config_file: str | None = None,
    **kwargs: Any,
) -> ResilientWandbLogger:
    """Build the logger; ``name``/``group``/``tags`` left null are derived from ``identity``
    (backbone, stride, data, recipe) and the multirun: group = recipe + sweep directory name,
    one run per job named ``<backbone>-fcn<stride>s-<data>[-job<n>]``."""
    mode, why = resolve_mode(offline)
    log.info("W&B mode: %s (%s)", mode, why)
    if mode != "online" and log_model:
        log.warning("W&B is %s: log_model=%s ignored (checkpoints cannot be uploaded).", mode, log_model)
        log_model = False
    backbone, stride, data, recipe = (identity[k] for k in ("backbone", "stride", "data", "recipe"))
    sweep = sweep_info()
    default_name = f"{backbone}-fcn{stride}s-{data}" + (f"-job{sweep[1]}" if sweep else "")
    derived_tags = [backbone, f"fcn{stride}s", data, recipe] + (["multirun"] if sweep else [])
    config = None
    if config_file and Path(config_file).exists():
        config = OmegaConf.to_container(OmegaConf.load(config_file), resolve=True)
    return ResilientWandbLogger(
        name=name or default_name,
        group=group or (f"{recipe}-{sweep[0]}" if sweep else recipe),
        tags=list(dict.fromkeys([*(tags or []), *derived_tags])),
        mode=mode,
        log_model=log_model,
        config=config,
        **kwargs,
    )


def _wandb_loggers(trainer: L.Trainer) -> list[WandbLogger]:
    return [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]


class WandbSegmentationMedia(L.Callback):
    """After testing: the per-class IU as a wandb.Table and ``num_images`` test images with their
    prediction and ground truth as wandb masks carrying the class names."""

    def __init__(self, num_images: int = 4) -> None:
        self.num_images = num_images

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loggers = _wandb_loggers(trainer)
        if not loggers or not trainer.is_global_zero:
            return
        class_names = list(pl_module.hparams.class_names or range(pl_module.hparams.num_classes))
        per_class = pl_module.results["test"][PRIMARY_HEAD]["per_class_iu"]
        rows = [[str(name), None if iu != iu else float(iu)] for name, iu in zip(class_names, per_class)]
        images, masks = self._samples(trainer, pl_module, class_names)
        for logger in loggers:
            logger.log_table("test/per_class_iu", columns=["class", "IU"], data=rows)
            if images:
                logger.log_image("test/predictions", images, masks=masks)

    @torch.inference_mode()
    def _samples(self, trainer: L.Trainer, pl_module: L.LightningModule, class_names: list[str]):
        datamodule = trainer.datamodule
        labels = {i: str(name) for i, name in enumerate(class_names)}
        labels[pl_module.hparams.ignore_index] = "void"
        images, masks = [], []
        was_training = pl_module.training
        pl_module.eval()
        for image, target in datamodule.test_dataloader():
            outputs = pl_module(image.to(pl_module.device))
            if isinstance(outputs, dict):
                outputs, target = outputs[PRIMARY_HEAD], target[PRIMARY_HEAD]
            for i in range(min(image.shape[0], self.num_images - len(images))):
                images.append(datamodule.denormalize(image[i]))
                masks.append({
                    "prediction": {"mask_data": outputs[i].argmax(0).cpu().numpy(), "class_labels": labels},
                    "ground_truth": {"mask_data": target[i].numpy(), "class_labels": labels},
                })
            if len(images) >= self.num_images:
                break
        pl_module.train(was_training)
        return images, masks


def finish_wandb() -> None:
    """End this job's W&B run, so the next job of a multirun (same process) starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()
