"""Data sets in their real on-disk layouts, transforms, and the one SegmentationDataModule."""

from fcn_lit.data.datamodule import SegmentationDataModule
from fcn_lit.data.errors import BadSampleError, DataError, DataNotFoundError, SplitFileError
from fcn_lit.data.palette import colorize, voc_palette
from fcn_lit.data.voc import VOC

__all__ = [
    "VOC",
    "BadSampleError",
    "DataError",
    "DataNotFoundError",
    "SegmentationDataModule",
    "SplitFileError",
    "colorize",
    "voc_palette",
]
