"""fcn-lit: Fully Convolutional Networks for semantic segmentation with Lightning and Hydra."""

import os
from pathlib import Path

__version__ = "0.1.0"

# conf/ resolves logs/ and data/ against PROJECT_ROOT: default to this checkout's root, so every
# command works from any directory.
os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[2]))
