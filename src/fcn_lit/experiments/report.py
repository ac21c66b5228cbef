"""Compare finished runs without W&B: a markdown + CSV table of the four metrics per run, the
paper's numbers beside runs that match a paper setting, and PNG plots (learning curves, per-class
IU, confusion matrices). `python report.py <run or multirun dir>... [--out DIR]`."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.syntax import Syntax

from fcn_lit.experiments.scores import METRIC_NAMES, percent
from fcn_lit.experiments.sweeps import run_identity
from fcn_lit.models.summary import model_flops

METRICS = tuple(METRIC_NAMES)  # pixel_acc, mean_acc, mean_iu, fw_iu
FLOPS_SIZE = 500  # the input side at which a run's net is counted (the paper's 500x500)


@dataclass(frozen=True)
class PaperResult:
    """Numbers (percent, None where not reported) a paper setting reached."""

    source: str
    setting: dict[str, Any]
    scores: tuple[float | None, float | None, float | None, float | None]


def _vgg(**setting: Any) -> dict[str, Any]:
    return {"backbone": "vgg16", "width": 1.0, **setting}


# ../shared/docs/fcn-reference.md section 5. A run matches an entry when every key of the entry's
# setting equals the run's (sweeps.run_identity); the entry with the most keys wins.
PAPER_RESULTS: tuple[PaperResult, ...] = (
    PaperResult("CVPR Table 1 (VOC2011 val, no extra data)", {"backbone": "caffenet", "width": 1.0, "data": "voc", "stride": 32}, (None, None, 39.8, None)),
    PaperResult("CVPR Table 1 (VOC2011 val, no extra data)", _vgg(data="voc", stride=32), (None, None, 56.0, None)),
    PaperResult("CVPR Table 1 (VOC2011 val, no extra data)", {"backbone": "googlenet", "width": 1.0, "data": "voc", "stride": 32}, (None, None, 42.5, None)),
    PaperResult("release, seg11valid", {"backbone": "caffenet", "width": 1.0, "data": "voc_sbd", "stride": 32}, (None, None, 48.0, None)),
    PaperResult("release, seg11valid", _vgg(data="voc_sbd", stride=32), (90.48, 76.48, 63.63, 83.46)),
    PaperResult("release, seg11valid", _vgg(data="voc_sbd", stride=16), (None, None, 65.0, None)),
    PaperResult("release, seg11valid", _vgg(data="voc_sbd", stride=8), (91.22, 77.61, 65.51, 84.54)),
    PaperResult("release at-once, seg11valid", _vgg(data="voc_sbd", stride=8, at_once=True), (None, None, 65.4, None)),
    PaperResult("CVPR Table 2 (FCN-32s-fixed)", _vgg(data="voc_sbd", stride=32, recipe="voc_fcn32s_fixed"), (83.0, 59.7, 45.4, 72.0)),
    PaperResult("CVPR Table 2", _vgg(data="voc_sbd", stride=32, recipe="voc_fcn32s_vgg16_cvpr"), (89.1, 73.3, 59.4, 81.4)),
    PaperResult("CVPR Table 2", _vgg(data="voc_sbd", stride=16, recipe="voc_fcn8s_staged"), (90.0, 75.7, 62.4, 83.0)),
    PaperResult("CVPR Table 2", _vgg(data="voc_sbd", stride=8, recipe="voc_fcn8s_staged"), (90.3, 75.9, 62.7, 83.2)),
    PaperResult("Table 4 (NYUDv2 RGB)", _vgg(data="nyud", stride=32, modalities=["color"]), (60.0, 42.2, 29.2, 43.9)),
    PaperResult("Table 4 (NYUDv2 RGBD)", _vgg(data="nyud", stride=32, modalities=["color", "depth"]), (61.5, 42.4, 30.5, 45.5)),
    PaperResult("Table 4 (NYUDv2 HHA)", _vgg(data="nyud", stride=32, modalities=["hha"]), (57.1, 35.2, 24.2, 40.4)),
    PaperResult("Table 4 (NYUDv2 RGB-HHA)", _vgg(data="nyud", stride=32, modalities=["color", "hha"]), (64.3, 44.9, 32.8, 48.0)),
    PaperResult("Table 4 (NYUDv2 RGB-HHA)", _vgg(data="nyud", stride=16, modalities=["color", "hha"]), (65.4, 46.1, 34.0, 49.5)),
    PaperResult("Table 5 (SIFT Flow; geometric acc. 94.3)", _vgg(data="siftflow", stride=16), (85.2, 51.7, 39.5, 76.1)),
    PaperResult("TPAMI (PASCAL-Context)", _vgg(data="context", stride=32), (None, None, 31.8, None)),
    PaperResult("TPAMI (PASCAL-Context)", _vgg(data="context", stride=16), (None, None, 34.8, None)),
    PaperResult("TPAMI (PASCAL-Context)", _vgg(data="context", stride=8), (None, None, 35.1, None)),
)


def paper_result(identity: dict[str, Any]) -> PaperResult | None:
    """The most specific paper entry whose setting the run has, or None."""
    matches = [p for p in PAPER_RESULTS if all(identity.get(k) == v for k, v in p.setting.items())]
    return max(matches, key=lambda p: len(p.setting), default=None)


@dataclass
class Run:
    """One finished run directory: its config, metrics.json and, where present, its CSV log."""

    path: Path
    label: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    overrides: list[str] = field(default_factory=list)

    @property
    def identity(self) -> dict[str, Any]:
        return run_identity(self.config)

    @property
    def failed(self) -> bool:
        """No metrics.json: the job failed (or is still running)."""
        return not self.metrics

    @property
    def test(self) -> dict[str, Any]:
        return self.metrics.get("test", {})

    def history(self) -> list[dict[str, float]]:
        """Rows of the CSV log (logger=csv, the default), numbers only; empty without one."""
        log = self.path / "csv" / "metrics.csv"
        if not log.exists():
            return []
        with log.open() as f:
            return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def find_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Every job under the given run or multirun directories: finished ones (a metrics.json) and
    failed or unfinished ones (a job directory, with Hydra's .hydra/ or train.py's config.yaml, but
    no metrics.json), which the report lists as failed."""
    runs = []
    for root in map(Path, paths):
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such directory; give a run or multirun directory")
        found = sorted(_job_dirs(root), key=_natural_key)
        if not found:
            raise FileNotFoundError(
                f"{root}: no run below it (a run directory holds the config.yaml and metrics.json that "
                "train.py writes); check the path"
            )
        runs += [load_run(run, f"{root.name}/{run.relative_to(root)}" if run != root else root.name) for run in found]
    return runs


def _job_dirs(root: Path) -> set[Path]:
    finished = {p.parent for p in root.rglob("metrics.json")}
    started = {p.parent for p in root.rglob("config.yaml") if p.parent.name != ".hydra"}
    started |= {p.parent.parent for p in root.rglob(".hydra/config.yaml")}
    # A report folder or an eval run inside a run directory is not a job of its own.
    return {d for d in finished | started if not any(parent in finished and parent != d for parent in d.parents)}


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in path.parts]


def load_run(path: Path, label: str | None = None) -> Run:
    """A job directory: its config (train.py's config.yaml, else Hydra's .hydra/config.yaml for a
    job that failed before writing it) and its metrics.json (empty for a failed job)."""
    config_file = next((f for f in (path / "config.yaml", path / ".hydra" / "config.yaml") if f.exists()), None)
    if config_file is None:
        raise FileNotFoundError(f"{path / 'config.yaml'} is missing: train.py writes it at the start of every run")
    overrides_file = path / "overrides.yaml"
    metrics_file = path / "metrics.json"
    return Run(
        path=path,
        label=label or path.name,
        config=OmegaConf.to_container(OmegaConf.load(config_file)),
        metrics=json.loads(metrics_file.read_text()) if metrics_file.exists() else {},
        overrides=list(OmegaConf.load(overrides_file)) if overrides_file.exists() else [],
    )


def _paper_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def comparison_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per run: identity, the four test metrics (fractions), the paper's (percent)."""
    shared = set.intersection(*(set(run.overrides) for run in runs)) if len(runs) > 1 else set()
    rows = []
    for run in runs:
        ident, paper = run.identity, paper_result(run.identity)
        row = {
            "run": run.label,
            "status": "failed" if run.failed else "finished",
            # What sets this run apart: the overrides the other reported runs do not share.
            "overrides": " ".join(o for o in run.overrides if o not in shared),
            "backbone": ident["backbone"],
            "stride": ident["stride"],
            "data": ident["data"],
            "recipe": ident["recipe"],
            **{m: run.test.get(m) for m in METRICS},
            "best_val_mean_iu": run.metrics.get("best_val_mean_iu"),
            "gflops": model_flops(run.config["model"], len(run.test.get("per_class_iu", {})) or 21, FLOPS_SIZE) / 1e9,
            "paper_source": paper.source if paper else "",
            **{f"paper_{m}": (paper.scores[i] if paper else None) for i, m in enumerate(METRICS)},
        }
        rows.append(row)
    return rows


def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The table as the paper prints it: percent, two decimals; paper numbers beside matching runs."""
    header = ["run", "setting", "overrides", *METRIC_NAMES.values(), "best val mean IU",
              f"GFLOPs ({FLOPS_SIZE}x{FLOPS_SIZE})", "paper (pixel acc. / mean acc. / mean IU / f.w. IU)", "paper source"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 3 + "---:|" * 6 + "---|---|"]
    for row in rows:
        paper = " / ".join(_paper_pct(row[f"paper_{m}"]) for m in METRICS) if row["paper_source"] else ""
        name = f"{row['run']} **failed** (no metrics.json)" if row["status"] == "failed" else row["run"]
        cells = [name, f"{row['backbone']} FCN-{row['stride']}s {row['data']} ({row['recipe']})",
                 f"`{row['overrides']}`" if row["overrides"] else "",
                 *(percent(row[m]) for m in METRICS), percent(row["best_val_mean_iu"]), f"{row['gflops']:.1f}",
                 paper, row["paper_source"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(runs: Sequence[Run], path: Path) -> Path:
    """Training loss per logged step and validation mean IU per epoch, one line per run."""
    plt = _pyplot()
    fig, (loss_ax, iu_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        history = run.history()
        loss = [(r["step"], r["train/loss"]) for r in history if "train/loss" in r]
        val = [(r["epoch"], 100 * r["val/mean_iu"]) for r in history if "val/mean_iu" in r]
        if loss:
            loss_ax.plot(*zip(*loss), label=run.label)
        if val:
            iu_ax.plot(*zip(*val), marker="o", label=run.label)
    loss_ax.set(title="training loss", xlabel="step", ylabel="loss")
    iu_ax.set(title="validation mean IU", xlabel="epoch", ylabel="mean IU (%)")
    iu_ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_per_class_iu(runs: Sequence[Run], path: Path) -> Path:
    """Grouped bars: test IU per class, one bar per run."""
    plt = _pyplot()
    classes = list(dict.fromkeys(c for run in runs for c in run.test.get("per_class_iu", {})))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(classes) * max(1, len(runs) / 2)), 4))
    width = 0.8 / max(1, len(runs))
    for i, run in enumerate(runs):
        ius = [run.test.get("per_class_iu", {}).get(c) for c in classes]
        ax.bar(np.arange(len(classes)) + i * width, [100 * (v or 0.0) for v in ius], width, label=run.label)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, rotation=45, ha="right")
    ax.set(ylabel="test IU (%)", ylim=(0, 100), title="per-class IU")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusion_matrix(confmat: Sequence[Sequence[int]], class_names: Sequence[str], path: Path,
                          title: str = "") -> Path:
    """Rows (ground truth) normalised to 1: the diagonal is each class's accuracy."""
    plt = _pyplot()
    hist = np.asarray(confmat, dtype=np.float64)
    rows = hist / np.maximum(hist.sum(1, keepdims=True), 1)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * n + 2), max(4, 0.35 * n + 1.5)))
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=90)
    ax.set_yticks(range(n), class_names)
    ax.set(xlabel="prediction", ylabel="ground truth", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _file_stem(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def write_report(runs: Sequence[Run], out: Path, console: Console | None = None) -> dict[str, Path]:
    """Write report.md, report.csv and the plots into ``out``; print the table; return the paths."""
    if not runs:
        raise ValueError("no runs to report")
    out.mkdir(parents=True, exist_ok=True)
    rows = comparison_rows(runs)
    markdown = to_markdown(rows)
    paths = {"markdown": out / "report.md", "csv": write_csv(rows, out / "report.csv"),
             "learning_curves": plot_learning_curves(runs, out / "learning_curves.png"),
             "per_class_iu": plot_per_class_iu(runs, out / "per_class_iu.png")}
    for run in runs:
        confmat = run.test.get("confusion_matrix")
        if confmat is not None:
            names = list(run.test.get("per_class_iu", {})) or [str(i) for i in range(len(confmat))]
            paths[f"confusion_matrix:{run.label}"] = plot_confusion_matrix(
                confmat, names, out / f"confusion_matrix_{_file_stem(run.label)}.png", f"{run.label} (test)")
    paths["markdown"].write_text(
        "# Run comparison\n\nTest scores in percent; paper numbers from the FCN papers and the Caffe release (docs: fcn-reference.md, section 5).\n\n"
        + markdown + "\n" + "".join(f"![{k}]({p.name})\n" for k, p in paths.items() if p.suffix == ".png"))
    console = console or Console()
    console.print(markdown, markup=False, highlight=False, soft_wrap=True)
    failed = [run for run in runs if run.failed]
    if failed:
        console.print(f"{len(failed)} of {len(runs)} jobs failed or are unfinished (no metrics.json; their "
                      f"<task>.log says why): {', '.join(str(run.path) for run in failed)}", markup=False)
    console.print(f"Report written to [bold]{out}[/bold]")
    return paths


@rank_zero_only
def print_config(cfg: DictConfig, console: Console | None = None) -> None:
    """The composed config as YAML, as it is saved in the run directory (printed once under DDP)."""
    console = console or Console()
    console.rule("composed config")
    console.print(Syntax(OmegaConf.to_yaml(cfg, resolve=True), "yaml", background_color="default"))
    console.rule()


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories or multirun (sweep) directories")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: <first dir>/report)")
    args = parser.parse_args(argv)
    try:
        runs = find_runs(args.runs)
    except (FileNotFoundError, ValueError) as error:  # one line, no traceback
        raise SystemExit(f"report.py: {error}") from None
    return write_report(runs, args.out or Path(args.runs[0]) / "report")
