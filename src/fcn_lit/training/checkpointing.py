"""Checkpoint files: loaded only as plain data (``weights_only=True``, URLs downloaded to a cache
first), described by what they hold, written atomically, with the random state for an exact resume."""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import random
import shutil
import urllib.error
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

from fcn_lit.errors import UserError
from fcn_lit.models.caffe.release import caffemodel_checkpoint


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be used; the message names the file, what is wrong and what to do."""


def is_url(spec: str | Path) -> bool:
    return str(spec).startswith(("http://", "https://"))


def fetch_checkpoint(url: str) -> Path:
    """Download ``url`` into torch's hub cache (``$TORCH_HOME/hub/checkpoints``) with a progress bar
    and return the local file; a cached download is reused. ``<url>#sha256=<hex>`` checks the file's
    SHA-256 (a prefix of it is enough) and downloads again when the cached file differs."""
    address, _, fragment = url.partition("#")
    digest = None
    if fragment:
        if not fragment.startswith("sha256="):
            raise CheckpointError(f"{url}: the part after '#' must be sha256=<hex digest>, got {fragment!r}")
        digest = fragment.removeprefix("sha256=").lower()
    name = Path(urlparse(address).path).name or "checkpoint.ckpt"
    # One folder per URL: two runs' last.ckpt on one server are two files.
    dest = Path(torch.hub.get_dir()) / "checkpoints" / hashlib.sha256(address.encode()).hexdigest()[:16] / name
    if dest.is_file() and (digest is None or _sha256(dest).startswith(digest)):
        print(f"Using the cached download of {address}: {dest} (delete it to download again)")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"Downloading {address} to {dest}")
    try:
        torch.hub.download_url_to_file(address, str(dest), hash_prefix=digest, progress=True)
    except RuntimeError as error:  # torch.hub's checksum mismatch; the partial file is removed
        raise CheckpointError(f"{address}: {error}; the download was discarded, nothing was loaded") from None
    except (urllib.error.URLError, OSError) as error:
        raise CheckpointError(f"could not download {address}: {error}") from None
    return dest


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def local_checkpoint(spec: str | Path) -> Path:
    """The checkpoint file ``spec`` names: a local path, or a URL downloaded by fetch_checkpoint."""
    if is_url(spec):
        return fetch_checkpoint(str(spec))
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist: give a .ckpt written by train.py, a pytorch-fcn .pth, a Caffe "
            f".caffemodel of the FCN release or an http(s):// URL{_previous_hint(path)}"
        )
    return path


def load_checkpoint(spec: str | Path, mmap: bool = False) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of a local path or URL: a file holding Python objects other
    than tensors and plain containers is refused before anything in it runs. A truncated, corrupt or
    foreign file raises CheckpointError naming it and the previous checkpoint beside it.
    ``mmap`` maps tensors lazily (a cheap look at a large checkpoint). A ``.caffemodel`` of the FCN
    release is read with protobuf into the same form (``fcn_lit.models.caffe.release.caffemodel_checkpoint``)."""
    path = local_checkpoint(spec)
    if path.suffix == ".caffemodel":
        return caffemodel_checkpoint(path)
    try:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as error:
            if not (mmap and "mmap" in str(error)):
                raise
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as error:
        reason = next((line.strip() for line in str(error).splitlines() if "GLOBAL" in line or "global" in line), "")
        raise CheckpointError(
            f"{path} holds Python objects, not just tensors and plain data ({reason or 'refused by weights_only=True'}): "
            "fcn-lit loads checkpoints with weights_only=True and ran nothing from it. Use a checkpoint "
            f"written by train.py{_previous_hint(path)}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{path} is truncated or not a PyTorch checkpoint ({str(error).splitlines()[0]}){_previous_hint(path)}"
        ) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dictionary{_previous_hint(path)}")
    return checkpoint


def _previous_hint(path: Path) -> str:
    """'; the previous checkpoint ... ' for the newest other readable checkpoint beside ``path``."""
    folder = path.parent
    if not folder.is_dir():
        return ""
    others = sorted((p for p in folder.glob("*.ckpt") if p.resolve() != path.resolve()),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for other in others:
        try:
            saved = torch.load(other, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # unreadable as well: try the one before
            continue
        where = f" (epoch {saved['epoch']}, step {saved['global_step']})" if "global_step" in saved else ""
        return f"; the previous checkpoint there is {other}{where}: ckpt_path={other}"
    return ""


def architecture(hparams: dict[str, Any]) -> str:
    """'FCN-8s vgg16' (with width, classes and heads when they are not the defaults)."""
    net, backbone = hparams.get("net", {}), hparams.get("backbone", {})
    text = f"FCN-{net.get('stride', '?')}s {backbone.get('name', '?')}"
    if backbone.get("width", 1.0) != 1.0:
        text += f" width {backbone['width']}"
    return text + f", {hparams.get('task_heads') or hparams.get('num_classes')} classes"


def check_resumable(checkpoint: dict[str, Any], path: str | Path, module: L.LightningModule) -> None:
    """Raise CheckpointError unless ``checkpoint`` is a full train.py checkpoint of ``module``'s
    architecture (same layers and shapes)."""
    if not {"state_dict", "hyper_parameters", "optimizer_states", "loops"} <= checkpoint.keys():
        raise CheckpointError(
            f"{path} is not a resumable train.py checkpoint (it has {sorted(checkpoint)[:6]}): to start a new run "
            f"from its weights use init_from={path}"
        )
    kinds = [hp.get("optimizer", {}).get("name", "sgd") for hp in (checkpoint["hyper_parameters"], module.hparams)]
    if kinds[0] != kinds[1]:
        raise CheckpointError(
            f"{path} was trained with model.optimizer.name={kinds[0]}, the config asks {kinds[1]}: a resume keeps "
            f"the optimizer's kind (its state is {kinds[0]}'s); start a new run from its weights with init_from={path}"
        )
    held, asked = architecture(checkpoint["hyper_parameters"]), architecture(dict(module.hparams))
    expected = module.state_dict()
    saved = checkpoint["state_dict"]
    differ = [k for k in expected.keys() | saved.keys()
              if k not in expected or k not in saved or expected[k].shape != saved[k].shape]
    if held != asked or differ:
        examples = ", ".join(sorted(differ)[:3])
        raise CheckpointError(
            f"{path}: the checkpoint holds {held}, the config asks {asked}"
            + (f" ({len(differ)} layers differ, e.g. {examples})" if differ else "")
            + ": resume with the config the checkpoint was trained with (its run's config.yaml), or start a "
            f"new run from its weights with init_from={path}{_previous_hint(Path(path))}"
        )


def logged_steps(checkpoint: dict[str, Any]) -> int:
    """The logger step a run resumed from ``checkpoint`` logs next (Lightning's _batches_that_stepped,
    plus the batch a checkpoint saved at a batch's end, e.g. SLURM's hpc_ckpt, had not counted yet:
    Lightning adds it when it restores)."""
    fit = checkpoint.get("loops", {}).get("fit_loop", {})
    stepped = fit.get("epoch_loop.state_dict", {}).get("_batches_that_stepped")
    if stepped is None:
        return int(checkpoint.get("global_step", 0))
    batches = fit.get("epoch_loop.batch_progress", {}).get("total", {})
    return int(stepped) + int(batches.get("processed", 0) == batches.get("completed", 0) + 1)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file in the checkpoint's folder, then ``os.replace``: a run
    killed while saving, or out of disk space, leaves the previous ``last.ckpt`` whole, never a
    truncated one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            needed, free = _tensor_bytes(checkpoint), shutil.disk_usage(path.parent).free
            kept = " The previous one is kept unchanged." if path.exists() else ""
            raise OSError(
                error.errno,
                f"no space left to write checkpoint {path}: it needs about {needed / 2**20:.0f} MiB, "
                f"{path.parent} has {free / 2**20:.0f} MiB free.{kept} Free some space (or set "
                "paths.output_dir on a larger disk) and resume with ckpt_path=last",
            ) from None
        finally:
            tmp.unlink(missing_ok=True)


def _tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in a (nested) checkpoint: about its size on disk."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def rng_states() -> dict[str, Any]:
    """torch, numpy and Python global random states as tensors and tuples (weights_only loads them)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "python": random.getstate(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))


class ResumeRandomState(Callback):
    """Saves the global random state (dropout, loss sampling) with each checkpoint and restores it
    when a fit resumes from one. Lightning restores weights, optimizer and loop counters, not the
    random state; the training order is seeded per epoch by the data module, and continues after
    the batches done when the checkpoint was written mid-epoch. With ``trainer.deterministic=true``
    a resumed run ends with the uninterrupted run's weights and metrics (single process; under DDP
    rank 0's state, and a mid-epoch checkpoint starts the epoch's order over).
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._pending = checkpoint.get("rng_states")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After the optimizers are built; the sanity check that follows runs under isolate_rng.
        if self._pending is not None:
            set_rng_states(self._pending)
            self._pending = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The training loader's position in the epoch (fcn_lit.data.datamodule.ResumableLoader), before
        # its first batch: Lightning applies it only when it builds the loader after restoring the
        # loops, not when configure_optimizers built it first (a schedule's estimated_stepping_batches).
        trainer.fit_loop._load_combined_loader_states()
