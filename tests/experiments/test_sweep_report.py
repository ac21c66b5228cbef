"""A 3-backbone multirun on tiny data, then report.py over it."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from sweeprun import BACKBONES

from fcn_lit.experiments.report import main
from PIL import Image

METRICS = ("pixel_acc", "mean_acc", "mean_iu", "fw_iu")


def _scores_from_confmat(hist: np.ndarray) -> dict[str, float]:
    """score.py's four metrics, written out again with numpy."""
    diag, gt, pred = np.diag(hist), hist.sum(1), hist.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        iu = diag / (gt + pred - diag)
        freq = gt / gt.sum()
        return {"pixel_acc": diag.sum() / hist.sum(), "mean_acc": np.nanmean(diag / gt),
                "mean_iu": np.nanmean(iu), "fw_iu": (freq[freq > 0] * iu[freq > 0]).sum()}


@pytest.mark.slow
def test_sweep_runs_one_job_per_backbone_with_its_own_config(tiny_sweep):
    jobs = sorted(p for p in tiny_sweep.iterdir() if (p / "metrics.json").exists())
    assert [OmegaConf.load(j / "config.yaml").model.backbone.name for j in jobs] == list(BACKBONES)
    data_root = Path(OmegaConf.load(jobs[0] / "config.yaml").data.root)
    labels = [np.array(Image.open(p)) for p in (data_root / "SegmentationClass").glob("val_*.png")]
    scored_pixels = sum(int((label < 6).sum()) for label in labels)  # 255 = void is not scored
    for job in jobs:
        test = json.loads((job / "metrics.json").read_text())["test"]
        hist = np.array(test["confusion_matrix"])
        assert hist.shape == (6, 6) and hist.sum() == scored_pixels
        for key, value in _scores_from_confmat(hist).items():
            assert test[key] == pytest.approx(value, abs=1e-9)


@pytest.mark.slow
def test_report_lists_every_run_with_its_metrics(tiny_sweep, tmp_path, capsys):
    out = tmp_path / "report"
    main([str(tiny_sweep), "--out", str(out)])  # report.py's entry, in this process
    printed = capsys.readouterr().out

    with (out / "report.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["backbone"] for r in rows] == list(BACKBONES)
    markdown = (out / "report.md").read_text()
    for row in rows:
        job = tiny_sweep / row["run"].split("/", 1)[1]
        saved = json.loads((job / "metrics.json").read_text())
        assert row["overrides"] == f"model/backbone={row['backbone']}"  # only what differs
        expected = [f"{100 * saved['test'][m]:.2f}" for m in METRICS]
        for key, value in zip(METRICS, expected):
            assert float(row[key]) == pytest.approx(saved["test"][key])
        # The printed and written markdown row holds the run's four metrics, in order, as percent.
        line = next(line for line in markdown.splitlines() if line.startswith(f"| {row['run']} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[3:7] == expected
        assert row["backbone"] in cells[1] and line in printed
        assert row["paper_source"] == ""  # a 1/16-width synthetic run matches no paper setting

    for name in ["learning_curves.png", "per_class_iu.png", *(f"confusion_matrix_backbones_{i}.png" for i in range(3))]:
        image = Image.open(out / name)
        assert image.width > 200 and image.height > 200
        assert np.asarray(image.convert("L")).std() > 5  # something was drawn


@pytest.mark.slow
def test_report_lists_a_failed_job_as_failed(tiny_sweep, tmp_path, capsys):
    """A job that stopped before metrics.json (here: job 1's removed) is a row marked failed."""
    sweep = tmp_path / "sweep"
    shutil.copytree(tiny_sweep, sweep, ignore=shutil.ignore_patterns("wandb", "*.ckpt", "report"))
    (sweep / "1" / "metrics.json").unlink()
    out = tmp_path / "report"
    main([str(sweep), "--out", str(out)])
    printed = capsys.readouterr().out
    with (out / "report.csv").open() as f:
        rows = {r["run"]: r for r in csv.DictReader(f)}
    assert [rows[f"sweep/{i}"]["status"] for i in range(3)] == ["finished", "failed", "finished"]
    assert rows["sweep/1"]["backbone"] == BACKBONES[1] and rows["sweep/1"]["mean_iu"] == ""
    assert "sweep/1 **failed**" in (out / "report.md").read_text()
    assert "1 of 3 jobs failed" in printed and str(sweep / "1") in printed


def test_report_on_a_missing_folder_says_so_in_one_line(tmp_path):
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "nowhere")])
    assert stop.value.code == f"report.py: {tmp_path / 'nowhere'}: no such directory; give a run or multirun directory"
