"""Silence exporters and quantisers: library code never prints into the caller's output."""

from __future__ import annotations

import io
import logging
import warnings
from contextlib import contextmanager, redirect_stdout


@contextmanager
def quiet(*logger_names: str):
    """Raise the named loggers (and the root logger for "root") to ERROR, drop warnings and stdout
    (NNCF draws progress bars there) for the duration; restore everything after."""
    loggers = [logging.getLogger() if n == "root" else logging.getLogger(n) for n in logger_names]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
