"""W&B with a key but no usable server: real servers on 127.0.0.1 that refuse, never answer, or
answer HTTP 500 all mean offline, with the reason in the log, and a run against the silent one
finishes (how long the fallback takes is measured apart: README, Reliability). A server that answers
the authenticated query keeps W&B online; one that rejects the key does not."""

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fcn_lit.experiments.wandb_logging import resolve_mode
from fcn_lit.training.train import train

FAST = ["logger=wandb", "model.optimizer.name=adamw", "num_pictures=0", "+trainer.limit_train_batches=1",
        "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1", "callbacks.wandb_media.num_images=1"]


class Answering(BaseHTTPRequestHandler):
    """Answers every request with ``code``, remembering the Authorization header it got."""

    code = 500
    seen: list[str] = []

    def do_POST(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        body = json.dumps({"data": {"viewer": {"id": "u"}}}).encode()
        self.send_response(self.code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def answering(code: int) -> ThreadingHTTPServer:
    handler = type(f"Answers{code}", (Answering,), {"code": code, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def server(request):
    """The URL of a server that refuses (nothing listens), hangs (accepts, never answers) or errors (500)."""
    kind = request.param
    if kind == "refuses":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]  # closed again: connections are refused
        yield f"http://127.0.0.1:{port}"
    elif kind == "hangs":
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)  # the kernel accepts connections; nobody ever reads or answers
            yield f"http://127.0.0.1:{silent.getsockname()[1]}"
    else:
        errors = answering(500)
        yield f"http://127.0.0.1:{errors.server_port}"
        errors.shutdown()


@pytest.fixture
def wandb_key(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_SILENT", "true")


REASONS = {"refuses": "is not reachable", "hangs": "did not answer within 3 s", "errors": "answered HTTP 500"}


@pytest.mark.parametrize("server", ["refuses", "errors"], indirect=True)  # "hangs": the run below
def test_unusable_server_means_offline_with_the_reason(server, wandb_key, monkeypatch, request):
    monkeypatch.setenv("WANDB_BASE_URL", server)
    mode, why = resolve_mode(None)
    assert mode == "offline" and why.startswith(f"{server} {REASONS[request.node.callspec.params['server']]}")


@pytest.mark.parametrize("server", ["hangs"], indirect=True)
def test_run_against_a_silent_server_logs_offline_and_finishes(server, wandb_key, monkeypatch, tiny_cfg, caplog):
    """The slowest of the three (the probe waits its full timeout); the others decide at once."""
    monkeypatch.setenv("WANDB_BASE_URL", server)
    cfg = tiny_cfg(*FAST)
    with caplog.at_level("INFO", logger="fcn_lit.experiments.wandb_logging"):
        results = train(cfg)
    modes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("W&B mode")]
    assert modes == [f"W&B mode: offline ({server} did not answer within 3 s)"]
    run_dir = Path(cfg.paths.output_dir)
    assert results["test"]["mean_iu"] is not None and (run_dir / "metrics.json").is_file()
    [offline] = list((run_dir / "wandb").glob("offline-run-*"))
    assert list(offline.glob("*.wandb"))  # the run's record log, for `wandb sync`


def test_an_answering_server_keeps_wandb_online_and_a_rejected_key_does_not(wandb_key, monkeypatch):
    ok = answering(200)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{ok.server_port}")
    assert resolve_mode(None) == ("online", f"API key accepted by http://127.0.0.1:{ok.server_port}")
    assert ok.RequestHandlerClass.seen == ["Basic " + base64.b64encode(b"api:" + b"k" * 40).decode()]
    unauthorised = answering(401)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{unauthorised.server_port}")
    mode, why = resolve_mode(None)
    assert mode == "offline" and why.endswith("answered HTTP 401 (the API key was rejected)")
    ok.shutdown()
    unauthorised.shutdown()
