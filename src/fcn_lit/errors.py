"""The errors whose message is the whole story for the user: what is wrong, where, and the fix."""


class UserError(Exception):
    """Base of the errors a user can fix (a missing file, a bad setting, GPUs that are not there).
    The entry points print the message without a traceback (fcn_lit.cli)."""


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
