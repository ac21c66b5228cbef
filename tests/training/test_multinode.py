"""Multi-node DDP as the README starts it (the same torchrun line on every node; here two on
127.0.0.1) ends with the metrics and weights of one node with two processes."""

import json
import socket

import pytest
import torch
from clirun import TINY_DATA, command, finish, popen, run
from readme_commands import REPO, Command, readme_commands, script_index
from runconfig import TINY

from fcn_lit.data.synthetic import generate_synthetic


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_of_one_process_match_one_node_of_two(tmp_path):
    (readme,) = [c.text for c in readme_commands() if c.text.startswith("torchrun --nnodes=2")]
    # Its own rendezvous port: another test may run the README's line at the same time.
    argv = Command(readme.replace("127.0.0.1:29400", f"127.0.0.1:{free_port()}"), 0).argv
    argv[script_index(argv)] = str(REPO / "train.py")
    data = generate_synthetic(tmp_path / "synthetic", **TINY_DATA)
    same = [*(o for o in TINY if not o.startswith("trainer=")), f"data.root={data}", "trainer.max_epochs=2",
            "trainer.deterministic=true", "num_pictures=0"]
    two_nodes, one_node = tmp_path / "two_nodes", tmp_path / "one_node"
    nodes = [popen([*argv, *same, f"hydra.run.dir={two_nodes}"], tmp_path) for _ in range(2)]
    run(command("train.py", one_node, "trainer=ddp_cpu", *same), tmp_path)  # 2 processes on one node
    for node in nodes:
        finish(node)

    metrics = [json.loads((d / "metrics.json").read_text()) for d in (two_nodes, one_node)]
    assert metrics[0]["test"] == metrics[1]["test"]
    assert metrics[0]["best_val_mean_iu"] == metrics[1]["best_val_mean_iu"]
    config = (two_nodes / "config.yaml").read_text()
    assert "num_nodes: 2" in config and "devices: 1" in config
    last = [torch.load(d / "checkpoints" / "last.ckpt", weights_only=True) for d in (two_nodes, one_node)]
    assert last[0]["global_step"] == last[1]["global_step"] == 2 * 16 // (2 * 4)  # 16 images, 2 processes x 4
    # gloo may add the two ranks' gradients in another order across nodes: equal up to float rounding
    # (measured: 4e-7 at most, in BatchNorm running variances; the test scores are equal).
    for key, value in last[1]["state_dict"].items():
        torch.testing.assert_close(last[0]["state_dict"][key], value, rtol=1e-5, atol=1e-6)
