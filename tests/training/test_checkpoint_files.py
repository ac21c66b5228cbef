"""Checkpoint files that cannot be trusted or used: a pickle payload served over HTTP runs nothing in
any entry point; a checksum is checked; truncated and mismatched checkpoints are named with what is
wrong and the previous checkpoint, and a failed resume changes nothing; a full disk keeps last.ckpt."""

import errno
import functools
import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest
import torch
from runconfig import compose_config

from fcn_lit.training.checkpointing import AtomicCheckpointIO, CheckpointError, load_checkpoint
from fcn_lit.inference.evaluate import evaluate
from fcn_lit.inference.export import export
from fcn_lit.inference.predict import load_predictor
from fcn_lit.training.train import train

FAST = ["num_pictures=0", "+trainer.num_sanity_val_steps=0", "test=false"]


class Payload:
    """Unpickling this runs ``exec``: it writes ``marker``. weights_only=True must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


@pytest.fixture
def server(tmp_path):
    """(folder, base URL, request log): a real HTTP server on 127.0.0.1 serving the folder."""
    folder, requests = tmp_path / "served", []
    folder.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def download_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def test_a_pickle_payload_served_over_http_runs_nothing_anywhere(tmp_path, server, tiny_cfg):
    folder, base, requests = server
    marker = tmp_path / "payload_ran"
    torch.save({"state_dict": {}, "hyper_parameters": Payload(marker)}, folder / "evil.ckpt")
    torch.load(folder / "evil.ckpt", weights_only=False)  # the payload is live: a plain load runs it
    assert marker.read_text() == "ran"
    marker.unlink()

    url = f"{base}/evil.ckpt"
    attempts = {
        "train ckpt_path": lambda: train(tiny_cfg(f"ckpt_path='{url}'", *FAST)),
        "train init_from": lambda: train(tiny_cfg(f"+init_from='{url}'", *FAST, run="init")),
        "eval": lambda: evaluate(compose_config(tmp_path / "eval", [f"ckpt_path='{url}'"], config_name="eval")),
        "predict": lambda: load_predictor(url),
        "export": lambda: export(url, tmp_path / "exported"),
    }
    for name, attempt in attempts.items():
        with pytest.raises(CheckpointError, match="holds Python objects") as refused:
            attempt()
        assert "evil.ckpt" in str(refused.value) and "exec" in str(refused.value), name
        assert not marker.exists(), f"{name} ran the payload"
    assert requests == ["/evil.ckpt"]  # downloaded once to the cache, then loaded from there
    assert not (tmp_path / "run" / "config.yaml").exists()  # refused before the run wrote anything


def test_a_url_checksum_is_checked_and_the_download_cached(tmp_path, server, download_cache):
    folder, base, requests = server
    saved = {"state_dict": {"w": torch.arange(6.0)}, "epoch": 3}
    torch.save(saved, folder / "good.ckpt")
    digest = hashlib.sha256((folder / "good.ckpt").read_bytes()).hexdigest()
    url = f"{base}/good.ckpt"

    with pytest.raises(CheckpointError, match="invalid hash value") as wrong:
        load_checkpoint(f"{url}#sha256={'0' * 64}")
    assert url in str(wrong.value)
    assert not list(download_cache.rglob("*.ckpt"))  # the bad download was discarded

    # As typed on the command line (quoted: Hydra's grammar has no bare '#').
    cfg = compose_config(tmp_path / "run", [f'ckpt_path="{url}#sha256={digest[:16]}"'])
    loaded = load_checkpoint(cfg.ckpt_path)
    assert torch.equal(loaded["state_dict"]["w"], saved["state_dict"]["w"])
    load_checkpoint(f"{url}#sha256={digest}")
    assert requests == ["/good.ckpt"] * 2  # the second matching load is served from the cache
    [cached] = download_cache.rglob("good.ckpt")
    assert cached.read_bytes() == (folder / "good.ckpt").read_bytes()


def snapshot(run_dir: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(run_dir)): (p.stat().st_mtime_ns, p.read_bytes()) for p in run_dir.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_broken_and_mismatched_checkpoints_are_named_and_change_nothing(tiny_cfg):
    run_dir = Path(train(tiny_cfg(*FAST))["run_dir"])
    last = run_dir / "checkpoints" / "last.ckpt"
    best = run_dir / "checkpoints" / "best.ckpt"
    whole = last.read_bytes()
    last.write_bytes(whole[: len(whole) // 2])
    before = snapshot(run_dir)

    with pytest.raises(CheckpointError) as truncated:
        train(tiny_cfg("trainer.max_epochs=2", "ckpt_path=last", *FAST))
    message = str(truncated.value)
    assert str(last) in message and "truncated" in message
    assert f"the previous checkpoint there is {best}" in message and f"ckpt_path={best}" in message
    assert snapshot(run_dir) == before
    with pytest.raises(CheckpointError, match="truncated"):
        load_predictor(last)

    last.write_bytes(whole)
    before = snapshot(run_dir)
    with pytest.raises(CheckpointError) as mismatched:
        train(tiny_cfg("trainer.max_epochs=2", "ckpt_path=last", "model=fcn16s", "model/backbone=vgg16_tiny", *FAST))
    message = str(mismatched.value)
    assert "the checkpoint holds FCN-8s vgg16 width 0.125, 6 classes, the config asks FCN-16s vgg16" in message
    assert "score_pool3" in message and f"init_from={last}" in message
    with pytest.raises(CheckpointError, match="model.optimizer.name=sgd, the config asks adamw"):
        train(tiny_cfg("trainer.max_epochs=2", "ckpt_path=last", "model.optimizer.name=adamw", *FAST))
    assert snapshot(run_dir) == before


def test_a_full_disk_names_the_path_and_the_space_and_keeps_the_previous_checkpoint(tmp_path):
    io = AtomicCheckpointIO()
    last = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.zeros(4)}, "global_step": 1}, last)
    previous = last.read_bytes()
    # The temporary file is /dev/full: the kernel answers ENOSPC to the write, as on a full disk.
    (last.parent / f".last.ckpt.{os.getpid()}.tmp").symlink_to("/dev/full")

    big = {"state_dict": {"w": torch.zeros(3, 2**20)}, "global_step": 2}  # 12 MiB of float32
    with pytest.raises(OSError) as full:
        io.save_checkpoint(big, last)
    assert full.value.errno == errno.ENOSPC
    assert f"no space left to write checkpoint {last}: it needs about 12 MiB" in str(full.value)
    assert "previous one is kept" in str(full.value) and "ckpt_path=last" in str(full.value)
    assert last.read_bytes() == previous
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]
