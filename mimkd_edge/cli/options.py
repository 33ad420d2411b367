"""A command's options → the library's checked object (ExportPlan, BenchConfig) or call, by field name.

The options carry the fields' names, defaults and choices; the library checks the values, once. A
ConfigError naming fields is re-raised naming the options the user typed, so the one-line error
says `--backend: ...`, not `backends: ...`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar

import click

from ..schema import ConfigError

T = TypeVar("T")


def from_options(cls: type[T], **fields) -> T:
    """`cls(**fields)`, inside a click command whose options are named as `cls`'s fields."""
    with named_as_options():
        return cls(**fields)


@contextlib.contextmanager
def named_as_options() -> Iterator[None]:
    """Inside a click command: a ConfigError whose keys are the command's option names (its parameters'
    names, e.g. `test_fraction`) is re-raised naming the options as typed (`--test-fraction`)."""
    try:
        yield
    except ConfigError as e:
        flags = {p.name: p.opts[0] for p in click.get_current_context().command.params if p.opts}
        keys = ", ".join(flags.get(key, key) for key in e.path.split(", "))
        raise ConfigError(keys, e.expected, e.got, e.source) from None
