"""Data sets in their real on-disk layouts, transforms, and the one SegmentationDataModule."""

from fcn_lit.data.context import PASCALContext
from fcn_lit.data.datamodule import SegmentationDataModule
from fcn_lit.data.errors import BadSampleError, DataError, DataNotFoundError, SplitFileError
from fcn_lit.data.folder import SegmentationFolder
from fcn_lit.data.nyud import NYUDv2
from fcn_lit.data.palette import colorize, voc_palette
from fcn_lit.data.sbd import SBD
from fcn_lit.data.siftflow import SIFTFlow
from fcn_lit.data.synthetic import Synthetic
from fcn_lit.data.voc import VOC

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
    "SegmentationFolder",
    "SplitFileError",
    "Synthetic",
    "colorize",
    "voc_palette",
]
