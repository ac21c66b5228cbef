"""The error whose message is the whole story for the user: what is wrong, where, and the fix."""


class UserError(Exception):
    """Base of the errors a user can fix (a missing file, a bad setting, GPUs that are not there).
    The entry points print the message without a traceback (fcn_lit.cli)."""
