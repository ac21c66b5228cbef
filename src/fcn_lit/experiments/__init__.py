"""Experiments: the bookkeeping around runs, their identity among a sweep's siblings and their comparison.

- ``rundir``: one live run per directory (a lock), config and overrides recorded once, resumes beside
- ``loggers``, ``wandb_logging``: CSV, TensorBoard and W&B (offline fallback) continuing a resumed run
- ``sweeps``: what identifies a run in a multirun, the sweep objective, the multirun + DDP guard
- ``scores``: printed tables and metrics.json; ``pictures``: predictions beside the ground truth
- ``report``: the local comparison of finished runs (``python report.py``)
"""
