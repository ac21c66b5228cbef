"""Lightning's CSV and TensorBoard loggers, continuing a resumed run's history in its run directory.

A resume calls ``continue_from(step)`` on each logger before it writes (fcn_lit.training.train). Both drop
what was logged at ``step`` or later, which the checkpoint does not hold and the resumed run logs
again: TensorBoard through its own ``purge_step``, the CSV logger the same way; Lightning's CSV
logger would otherwise delete metrics.csv. W&B continues the same run id
(``fcn_lit.experiments.wandb_logging.ResilientWandbLogger.continue_from``).
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import csv_logs, tensorboard
from lightning.pytorch.loggers.logger import rank_zero_experiment


class CSVLogger(csv_logs.CSVLogger):
    """``metrics.csv`` kept on resume: rows before the resumed step stay, new rows are appended."""

    _continue_at: int | None = None

    def continue_from(self, step: int) -> None:
        self._continue_at = step

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is not None or self._continue_at is None:
            return super().experiment
        path = Path(self.log_dir) / csv_logs.ExperimentWriter.NAME_METRICS_FILE
        header, rows = [], []
        if path.is_file():
            with open(path, newline="") as file:
                reader = csv.DictReader(file)
                header = list(reader.fieldnames or [])
                rows = [row for row in reader if row.get("step") and int(row["step"]) < self._continue_at]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
            writer = super().experiment  # Lightning's writer deletes metrics.csv: write back what stays
        if header:
            with open(path, "w", newline="") as file:
                out = csv.DictWriter(file, fieldnames=header)
                out.writeheader()
                out.writerows(rows)
            writer.metrics_keys = header
        return writer


class TensorBoardLogger(tensorboard.TensorBoardLogger):
    """Events at the resumed step or later, from before the resume, hidden (SummaryWriter's purge_step)."""

    def continue_from(self, step: int) -> None:
        self._kwargs["purge_step"] = step
