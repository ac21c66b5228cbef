"""Errors raised on bad data: each message names the file, the value and the fix."""

from __future__ import annotations

from fcn_lit.errors import UserError


class DataError(UserError):
    """Base class of every data problem raised by fcn_lit.data."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A root, split file, image or mask that should exist does not."""


class SplitFileError(DataError, ValueError):
    """A split file exists but lists no ids."""


class BadSampleError(DataError, ValueError):
    """One sample cannot be used: unreadable image, size mismatch, labels out of range."""

    def __init__(self, path: object, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)
