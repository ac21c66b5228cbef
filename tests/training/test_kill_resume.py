"""Killing a run (SIGKILL mid-epoch) and rerunning with ckpt_path=last ends where an uninterrupted
run ends: same weights, same metrics (deterministic settings)."""

import json

import pytest
import torch
from clirun import TINY_DATA, finish, popen, run, tiny_train

from fcn_lit.data.synthetic import generate_synthetic

SETTINGS = ["trainer.max_epochs=2", "trainer.deterministic=true", "num_pictures=0"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    data = generate_synthetic(tmp_path / "synthetic", **TINY_DATA)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    kill = ["+callbacks.kill._target_=faults.KillSelf", "+callbacks.kill.epoch=1", "+callbacks.kill.batch=2"]
    runs = [popen(tiny_train(whole, data, *SETTINGS), tmp_path),
            popen(tiny_train(killed, data, *SETTINGS, *kill), tmp_path)]
    finish(runs[0])
    finish(runs[1], expect_rc=-9)

    last = killed / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 0  # killed in the second (last) epoch
    assert not list(killed.glob("checkpoints/*.tmp")) and not (killed / "metrics.json").exists()

    # The killed run's lock names a process that is gone: the resume takes it over and says so.
    out = run(tiny_train(killed, data, *SETTINGS, "ckpt_path=last"), tmp_path)
    assert f"took over the lock {killed / '.lock'} of process {runs[1].pid}" in " ".join(out.split())

    expected = json.loads((whole / "metrics.json").read_text())
    resumed = json.loads((killed / "metrics.json").read_text())
    assert resumed["test"] == expected["test"]
    assert resumed["best_val_mean_iu"] == expected["best_val_mean_iu"]
    final = {name: torch.load(path / "checkpoints" / "last.ckpt", weights_only=True)
             for name, path in (("whole", whole), ("resumed", killed))}
    assert final["resumed"]["global_step"] == final["whole"]["global_step"] == 2 * 4
    for key, value in final["whole"]["state_dict"].items():
        assert torch.equal(final["resumed"]["state_dict"][key], value), key
