"""Data sets in their real on-disk layouts, transforms, and the one SegmentationDataModule."""

import importlib
import pkgutil

from fcn_lit.data.base import SegmentationDataset
from fcn_lit.data.context import PASCALContext
from fcn_lit.data.datamodule import SegmentationDataModule
from fcn_lit.data.folder import SegmentationFolder
from fcn_lit.data.nyud import NYUDv2
from fcn_lit.data.palette import colorize, voc_palette
from fcn_lit.data.sbd import SBD
from fcn_lit.data.siftflow import SIFTFlow
from fcn_lit.data.synthetic import Synthetic
from fcn_lit.data.voc import VOC
from fcn_lit.errors import BadSampleError, DataError, DataNotFoundError, SplitFileError

__all__ = [
    "SBD",
    "VOC",
    "BadSampleError",
    "DataError",
    "DataNotFoundError",
    "NYUDv2",
    "PASCALContext",
    "SIFTFlow",
    "SegmentationDataModule",
    "SegmentationDataset",
    "SegmentationFolder",
    "SplitFileError",
    "Synthetic",
    "colorize",
    "voc_palette",
]


def __getattr__(name: str) -> type[SegmentationDataset]:
    """A data set added as its own module (``fcn_lit/data/<module>.py`` defining ``<Class>``) is
    ``fcn_lit.data.<Class>`` too, with no edit here."""
    for info in pkgutil.iter_modules(__path__):
        found = getattr(importlib.import_module(f"{__name__}.{info.name}"), name, None)
        if isinstance(found, type) and issubclass(found, SegmentationDataset):
            return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
