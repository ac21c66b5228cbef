"""What the entry points do with an error the user can fix (a missing file, a busy run directory,
GPUs that are not there): print its message, exit with status 1, no traceback. Inside a multirun it
is raised as it is, so that the sweeper records that job (or Optuna trial) as failed and goes on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fcn_lit.checkpointing import CheckpointError
from fcn_lit.config_check import ConfigError
from fcn_lit.data.errors import DataError
from fcn_lit.devices import DeviceError
from fcn_lit.guards import NonFiniteLossError
from fcn_lit.models.pretrained import WeightsNotFoundError
from fcn_lit.rundir import RunDirectoryBusy
from fcn_lit.sweeps import MultirunDDPError, in_multirun

USER_ERRORS = (CheckpointError, ConfigError, DataError, DeviceError, MultirunDDPError, NonFiniteLossError,
               RunDirectoryBusy, WeightsNotFoundError)


def user_error(error: BaseException | None) -> BaseException | None:
    """The first of USER_ERRORS in ``error``'s chain of explicit causes (Hydra's instantiate raises
    an InstantiationException from the error of the class it builds), or None. An error raised
    while handling another (``__context__``) is not the user's: it keeps its traceback."""
    while error is not None:
        if isinstance(error, USER_ERRORS):
            return error
        error = error.__cause__
    return None


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        found = user_error(error)
        if found is None or in_multirun():
            raise
        raise SystemExit(f"Error: {found}") from None
