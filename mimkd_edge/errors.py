"""Errors a user can act on. The CLI prints str() of these as one line, with no traceback."""


class UserError(Exception):
    """Bad input or a missing prerequisite: the message names the file/key/path and what is expected."""

    exit_code = 2


class DivergedError(UserError):
    """The loss went non-finite; the last good checkpoint is left untouched."""

    exit_code = 3


def first_line(e: BaseException, limit: int = 200) -> str:
    """`Type: first non-empty line of its message` (just `Type` when the message is empty), for the
    one-line errors that wrap a library's exception."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0][:limit]}" if lines else type(e).__name__
