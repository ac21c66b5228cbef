"""Printing and saving a run's scores: the paper's four metrics and the per-class IU table."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

METRIC_NAMES = {"pixel_acc": "pixel acc.", "mean_acc": "mean acc.", "mean_iu": "mean IU", "fw_iu": "f.w. IU"}


def percent(value: float | None) -> str:
    """A score in [0, 1] as a percentage with two decimals; "-" when missing or NaN (class absent)."""
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def scores_table(scores: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    for name in METRIC_NAMES.values():
        table.add_column(name, justify="right")
    table.add_row(*(percent(scores[key]) for key in METRIC_NAMES))
    return table


def comparison_table(rows: dict[str, dict[str, Any]], title: str) -> Table:
    """The four metrics of several passes (rows keyed by label), one row each."""
    table = Table(title=title)
    table.add_column("")
    for name in METRIC_NAMES.values():
        table.add_column(name, justify="right")
    for label, scores in rows.items():
        table.add_row(label, *(percent(scores[key]) for key in METRIC_NAMES))
    return table


def per_class_table(per_class_iu: list[float], class_names: list[str], title: str, column: str = "class") -> Table:
    table = Table(title=title)
    table.add_column(column)
    table.add_column("IU", justify="right")
    for name, iu in zip(class_names, per_class_iu):
        table.add_row(name, percent(iu))
    return table


def print_scores(scores: dict[str, Any], class_names: list[str], title: str, console: Console | None = None) -> None:
    """Print the four metrics (percent, as the paper's tables) and the per-class IU."""
    console = console or Console()
    console.print(scores_table(scores, title))
    console.print(per_class_table(scores["per_class_iu"], class_names, f"{title}: per-class IU (%)"))


def score_or_none(value: Any) -> Any:
    """A score as JSON can hold it: NaN or infinite (nothing scored: a class absent, a split without
    labelled pixels, no validation) becomes None; other values pass unchanged."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def named_scores(scores: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
    """Scores with per-class IU keyed by class name; scores of nothing (NaN) written as null."""
    out = {k: score_or_none(v) for k, v in scores.items() if k != "per_class_iu"}
    out["per_class_iu"] = {name: score_or_none(iu) for name, iu in zip(class_names, scores["per_class_iu"])}
    return out


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Write JSON through a temporary file (one per process, for processes writing the same file), so
    a crash never leaves a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False))
    tmp.replace(path)
    return path
