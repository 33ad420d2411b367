"""Errors a user can act on. The CLI prints str() of these as one line, with no traceback."""


class UserError(Exception):
    """Bad input or a missing prerequisite: the message names the file/key/path and what is expected."""

    exit_code = 2


class DivergedError(UserError):
    """The loss went non-finite; the last good checkpoint is left untouched."""

    exit_code = 3
