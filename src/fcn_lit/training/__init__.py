"""Training: a composed config in; checkpoints, metrics.json and pictures in the run directory out.

- ``module``: ``FCNModule``, the LightningModule (an FCN, its loss, the paper's four metrics per split)
- ``losses``, ``optim``: the per-pixel loss and the SGD recipe with its schedules
- ``train``: the train task; ``staged``: FCN-32s -> 16s -> 8s, each stage from the previous one
- ``tasks``: what train, eval, predict and export share (data module, trainer, the checkpoint loader)
- ``checkpointing``, ``preemption``, ``guards``, ``devices``: weights-only checkpoint files, signals,
  the NaN guard, and what the trainer runs on
"""
