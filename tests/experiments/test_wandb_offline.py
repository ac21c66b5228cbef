"""W&B offline: each job of the sweep is its own run; its metrics, per-class IU table and mask
images are read back from the offline run files (the .wandb record log)."""

import csv
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image
from wandb.proto import wandb_internal_pb2

from fcn_lit.experiments.wandb_logging import ResilientWandbLogger, resolve_mode

BLOCK, HEADER = 32768, 7  # the .wandb file: LevelDB log blocks after a 7-byte ":W&B" header


def read_records(path: Path):
    """Parse a .wandb file into protobuf records (the format `wandb sync` uploads)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run log"
    pos, chunk = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        _crc, length, kind = struct.unpack("<IHB", data[pos: pos + HEADER])
        if left < HEADER or (length == 0 and kind == 0):  # block padding
            pos += left
            continue
        chunk += data[pos + HEADER: pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):  # FULL or LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            chunk = b""
            yield record


def offline_run(job: Path) -> dict:
    """The run's identity, history rows and config of one job's offline run directory."""
    [run_dir] = list((job / "wandb").glob("offline-run-*"))
    [log] = list(run_dir.glob("*.wandb"))
    out = {"dir": run_dir, "history": [], "config": {}}
    for record in read_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out.update(id=record.run.run_id, name=record.run.display_name, group=record.run.run_group,
                       tags=list(record.run.tags))
        elif kind == "history":
            out["history"].append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                   for item in record.history.item})
        elif kind == "config":
            out["config"].update({u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in record.config.update})
    return out


@pytest.mark.slow
def test_each_job_is_its_own_named_grouped_tagged_run(tiny_sweep):
    runs = [offline_run(tiny_sweep / str(i)) for i in range(3)]
    assert len({r["id"] for r in runs}) == 3
    assert [r["name"] for r in runs] == [f"{b}-fcn32s-synthetic-job{i}" for i, b in enumerate(("alexnet", "vgg16", "googlenet"))]
    assert {r["group"] for r in runs} == {f"train-{tiny_sweep.name}"}
    for run, backbone in zip(runs, ("alexnet", "vgg16", "googlenet")):
        assert {backbone, "fcn32s", "synthetic", "train", "multirun"} <= set(run["tags"])
        # The full composed config, as saved in the run directory.
        assert run["config"]["model"]["backbone"]["name"] == backbone
        assert run["config"]["data"]["generator"]["size"] == 48


@pytest.mark.slow
def test_metrics_learning_rate_table_and_masks_read_back(tiny_sweep):
    job = tiny_sweep / "1"
    run = offline_run(job)
    logged = {}
    for row in run["history"]:
        logged.update(row)

    # The validation mean IU per epoch equals the CSV log's (another logger, same run).
    with (job / "csv" / "metrics.csv").open() as f:
        csv_val = [float(r["val/mean_iu"]) for r in csv.DictReader(f) if r["val/mean_iu"]]
    wandb_val = [row["val/mean_iu"] for row in run["history"] if "val/mean_iu" in row]
    assert wandb_val == pytest.approx(csv_val)
    test = json.loads((job / "metrics.json").read_text())["test"]
    assert logged["test/mean_iu"] == pytest.approx(test["mean_iu"])
    assert any(key.startswith("lr-AdamW") for key in logged)

    # Per-class IU table: class names and the values metrics.json holds.
    table = json.loads((run["dir"] / "files" / logged["test/per_class_iu/path"]).read_text())
    assert table["columns"] == ["class", "IU"]
    assert {name: iu for name, iu in table["data"]} == pytest.approx(test["per_class_iu"])

    # Sample predictions: images with prediction and ground-truth masks carrying the class names.
    assert logged["test/predictions/_type"] == "images/separated"
    assert logged["test/predictions/count"] == 4
    first = logged["test/predictions/all_masks"][0]
    assert set(first) == {"prediction", "ground_truth"}
    labels = run["config"]["_wandb"]["mask/class_labels"]
    names = next(v["value"] for k, v in labels.items() if k.endswith("ground_truth"))
    assert list(names.values())[:6] == ["background", "disk", "box", "triangle", "ring", "ellipse"]
    # The ground-truth mask is the first validation label PNG of the data set on disk.
    mask = np.array(Image.open(run["dir"] / "files" / first["ground_truth"]["path"]))
    data_root = Path(OmegaConf.load(job / "config.yaml").data.root)
    first_id = (data_root / "ImageSets" / "Segmentation" / "val.txt").read_text().split()[0]
    label = np.array(Image.open(data_root / "SegmentationClass" / f"{first_id}.png"))
    np.testing.assert_array_equal(mask, label)


def test_mode_without_api_key_is_offline(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert resolve_mode(None)[0] == "offline"
    assert resolve_mode(False)[0] == "online"  # asked for explicitly
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert resolve_mode(False)[0] == "offline"  # the environment wins


def test_mode_with_key_but_unreachable_server_is_offline(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # discard port: refused at once
    mode, why = resolve_mode(None)
    assert mode == "offline" and "not reachable" in why


def test_failed_online_start_falls_back_to_offline(monkeypatch, tmp_path):
    import wandb

    modes = []

    def init(**kwargs):
        modes.append(kwargs.get("mode"))
        if kwargs.get("mode") != "offline":
            raise wandb.errors.CommError("no network")
        return "offline run"

    monkeypatch.setattr(wandb, "init", init)
    logger = ResilientWandbLogger(project="p", save_dir=str(tmp_path), mode="online")
    assert logger.experiment == "offline run"
    assert modes == ["online", "offline"]


@pytest.mark.parametrize("folder", ["offline-run-20261205_192816-4sr1yo7n", "offline-run-20261205_192816-4sr1yo7n-1",
                                    "run-20261205_192816-4sr1yo7n"])
def test_a_resume_continues_the_run_id_of_the_latest_record(tmp_path, folder):
    """wandb names a second start within the same second <folder>-1: the id is the record's, not the name's end."""
    latest = tmp_path / "wandb" / folder
    latest.mkdir(parents=True)
    (latest / "run-4sr1yo7n.wandb").write_bytes(b"")
    (tmp_path / "wandb" / "latest-run").symlink_to(folder)
    logger = ResilientWandbLogger(project="p", save_dir=str(tmp_path), mode="offline")
    logger.continue_from(4)
    assert logger._wandb_init["id"] == "4sr1yo7n"
