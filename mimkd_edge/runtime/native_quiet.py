"""Silence what a native runtime writes straight to the process's stderr (file descriptor 2): ExecuTorch's
threadpool logs its CPU probing there on every reset, and a library never prints into the caller's output."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced(*loggers: str) -> Iterator[None]:
    """fd 2 to /dev/null, the named Python loggers at ERROR and warnings dropped, for the duration; all
    restored after (an error raised inside still reaches the caller as an exception)."""
    quieted = [logging.getLogger(name) for name in loggers]
    levels = [lg.level for lg in quieted]
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        for lg in quieted:
            lg.setLevel(logging.ERROR)
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        for lg, level in zip(quieted, levels, strict=True):
            lg.setLevel(level)
