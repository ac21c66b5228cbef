"""What the entry points do with an error the user can fix (fcn_lit.errors.UserError: a missing
file, a busy run directory, GPUs that are not there): print its message, exit with status 1, no
traceback. Inside a multirun it is raised as it is, so that the sweeper records that job (or Optuna
trial) as failed and goes on. Light to import: train.py checks its config before torch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from fcn_lit.errors import UserError


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def user_error(error: BaseException | None) -> UserError | None:
    """The first UserError in ``error``'s chain of explicit causes (Hydra's instantiate raises an
    InstantiationException from the error of the class it builds), or None. An error raised while
    handling another (``__context__``) is not the user's: it keeps its traceback."""
    while error is not None:
        if isinstance(error, UserError):
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
