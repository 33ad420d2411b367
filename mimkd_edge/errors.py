"""Errors a user can act on. The CLI prints str() of these as one line, with no traceback."""

import re


class UserError(Exception):
    """Bad input or a missing prerequisite: the message names the file/key/path and what is expected."""

    exit_code = 2


class DivergedError(UserError):
    """The loss went non-finite; the last good checkpoint is left untouched."""

    exit_code = 3



_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BOILERPLATE = re.compile(r"^(Exception from \S+:\d+:?|Check '.*' failed at .*|FrontEnd API failed with \w+:?)$")


def one_line(e: BaseException, limit: int = 200) -> str:
    """`Type: first non-empty line of the message` (just `Type` when it is empty), ANSI colours removed,
    cut to `limit` characters: how a library's exception is quoted inside a one-line UserError."""
    text = _ANSI.sub("", str(e))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # OpenVINO prefixes the real reason with source locations: "Exception from src/...", "Check '...' failed at"
    useful = [ln for ln in lines if not _BOILERPLATE.match(ln)]
    first = (useful or lines or [""])[0]
    first = first if len(first) <= limit else first[: limit - 1] + "…"
    return f"{type(e).__name__}: {first}" if first else type(e).__name__
