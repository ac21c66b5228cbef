"""Walk a data set and report image sizes, class pixel frequencies and every problem found.

    python -m fcn_lit.data.check data=voc data.root=/data/VOCdevkit/VOC2012
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from fcn_lit.data.base import IGNORE_INDEX, SegmentationDataset
from fcn_lit.errors import DataError

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


@dataclass
class Report:
    """What one split holds: sizes (h, w) -> count, per head pixels per class (index 255 = void)
    and per class the labelled pixels of the images it appears in (for median frequency balancing)."""

    name: str
    num_samples: int
    sizes: Counter = field(default_factory=Counter)
    pixels: dict[str, np.ndarray] = field(default_factory=dict)
    image_pixels: dict[str, np.ndarray] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check_dataset(dataset: SegmentationDataset, name: str = "", progress: bool = True) -> Report:
    """Read every sample of `dataset`; count sizes and class pixels; collect problems instead of raising."""
    report = Report(name or f"{type(dataset).__name__} {dataset.split}", len(dataset.ids))
    ids = track(dataset.ids, description=f"checking {report.name}") if progress else dataset.ids
    for sample_id in ids:
        try:
            image, target = dataset.load(sample_id)
        except (DataError, OSError) as err:
            report.problems.append(f"{sample_id}: {err}")
            continue
        report.sizes[image.shape[:2]] += 1
        targets = target if isinstance(target, dict) else {"semantic": target}
        for head, mask in targets.items():
            counts = np.bincount(mask.ravel(), minlength=IGNORE_INDEX + 1)
            report.pixels[head] = report.pixels.get(head, 0) + counts
            present = (counts[:IGNORE_INDEX] > 0) * counts[:IGNORE_INDEX].sum()
            report.image_pixels[head] = report.image_pixels.get(head, 0) + present
    return report


def render(report: Report, class_names: dict[str, Sequence[str]], console: Console, weights: bool = False) -> None:
    """`weights`: add the median frequency weights training would use (`model.loss.class_weights=
    median_frequency`), for the training split."""
    console.rule(f"{report.name}: {report.num_samples} samples, {len(report.problems)} problems")
    if report.sizes:
        heights = [h for h, _ in report.sizes]
        widths = [w for _, w in report.sizes]
        common = ", ".join(f"{w}x{h} ({n})" for (h, w), n in report.sizes.most_common(3))
        console.print(f"image sizes (WxH): {min(widths)}..{max(widths)} x {min(heights)}..{max(heights)}; "
                      f"most common {common}")
    for head, counts in report.pixels.items():
        table = Table(title=f"{head} class pixel frequencies")
        columns = ("index", "class", "pixels", "fraction") + (("median-freq weight",) if weights else ())
        for column in columns:
            table.add_column(column, justify="right" if column != "class" else "left")
        names = class_names.get(head, ())
        total = counts.sum()
        balanced = median_frequency_weights(counts[:IGNORE_INDEX], report.image_pixels[head]) if weights else []
        for index in np.flatnonzero(counts):
            label = "void" if index == IGNORE_INDEX else (names[index] if index < len(names) else "?")
            weight = (f"{balanced[index]:.4f}" if index < IGNORE_INDEX else "-",) if weights else ()
            table.add_row(str(index), label, str(int(counts[index])), f"{counts[index] / total:.4f}", *weight)
        absent = [names[i] for i in range(len(names)) if counts[i] == 0]
        console.print(table)
        if absent:
            console.print(f"{head} classes with no pixel: {', '.join(absent)}")
    for kind, problems in problem_kinds(report.problems).items():
        console.print(f"[red]{len(problems)} x[/red] {kind}", markup=True, highlight=False)
        for problem in problems[:EXAMPLES]:
            console.print(f"    {problem}", markup=False, highlight=False)
        if len(problems) > EXAMPLES:
            console.print(f"    ... and {len(problems) - EXAMPLES} more", markup=False, highlight=False)


EXAMPLES = 3  # problems shown per kind; the full list goes to a file


def problem_kinds(problems: Sequence[str]) -> dict[str, list[str]]:
    """Problems grouped by kind: the message with its sample id, file names and numbers blanked."""
    kinds: dict[str, list[str]] = {}
    for problem in problems:
        message = problem.split(": ", 1)[-1]
        kind = re.sub(r"\S*[/\\]\S*|\S+\.(?:png|jpe?g|mat|txt|npy)\b", "<file>", message)
        kind = re.sub(r"\[[^\]]*\]|\(\d[^)]*\)|\d+(?:\.\d+)?", "#", kind)
        kinds.setdefault(kind, []).append(problem)
    return dict(sorted(kinds.items(), key=lambda item: -len(item[1])))


def write_problems(path: Path, reports: Sequence[Report]) -> Path:
    """Every problem of every split, one a line, under the split's heading."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [line for r in reports if r.problems for line in (f"# {r.name}: {len(r.problems)} problems", *r.problems)]
    path.write_text("\n".join(lines) + "\n")
    return path


def compose_data_config(overrides: Sequence[str]):
    """cfg.data from conf/: through train.yaml when present, else the data group on its own."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        if (CONF_DIR / "train.yaml").exists():
            return compose(config_name="train", overrides=list(overrides)).data
        extra = ["+paths=default"] if (CONF_DIR / "paths" / "default.yaml").exists() else []
        overrides = [f"+{o}" if o.startswith("data=") else o for o in overrides]
        return compose(overrides=extra + overrides).data


def main(argv: Sequence[str] | None = None, console: Console | None = None, listing: Path | None = None) -> int:
    """Check the splits of the data set the overrides select: a summary per kind of problem on the
    console, every problem in ``listing`` (default logs/data_check/<data set>_problems.txt); exit
    status 1 if anything is wrong."""
    from hydra.utils import instantiate

    console = console or Console()
    dm = instantiate(compose_data_config(sys.argv[1:] if argv is None else argv))
    try:
        dm.prepare_data()
    except DataError as err:
        console.print(f"[red]problem[/red] {err}", highlight=False)
        return 1
    reports = []
    seen = set()
    for stage in ("train", "val", "test"):
        if not dm.splits[stage] or (stage == "test" and dm.splits["test"] == dm.splits["val"]):
            continue
        dataset = dm.build_dataset(stage)
        if (type(dataset), dataset.root, dataset.split) in seen:
            continue
        seen.add((type(dataset), dataset.root, dataset.split))
        names = {"semantic": dm.class_names, "geometric": getattr(dataset, "geometric_names", ())}
        report = check_dataset(dataset, f"{dm.name} {stage} ({dataset.split})")
        render(report, names, console, weights=stage == "train")
        reports.append(report)
    problems = sum(len(r.problems) for r in reports)
    if not problems:
        console.rule("no problems found")
        return 0
    listing = write_problems(listing or Path(os.environ["PROJECT_ROOT"]) / "logs" / "data_check" / f"{dm.name}_problems.txt",
                             reports)
    console.rule(f"{problems} problems")
    console.print(f"Every problem, one a line: {listing}", highlight=False)
    return 1


if __name__ == "__main__":
    sys.exit(main())


def median_frequency_weights(class_pixels: np.ndarray, image_pixels: np.ndarray) -> list[float]:
    """Median frequency balancing (Eigen & Fergus, ICCV 2015): weight(c) = median(freq) / freq(c),
    freq(c) = pixels of class c / labelled pixels of the images where c appears. Classes never seen
    get weight 0 and stay out of the median."""
    class_pixels = np.asarray(class_pixels, dtype=np.float64)
    image_pixels = np.asarray(image_pixels, dtype=np.float64)
    seen = class_pixels > 0
    if not seen.any():
        raise ValueError("the training split has no labelled pixel: no class frequencies to balance")
    freq = np.divide(class_pixels, image_pixels, out=np.zeros_like(class_pixels), where=seen)
    return np.where(seen, np.median(freq[seen]) / np.where(seen, freq, 1), 0.0).tolist()
