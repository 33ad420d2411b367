"""A command's options → the library's checked object (ExportPlan, BenchConfig), by field name.

The options carry the fields' names, defaults and choices; the object checks the values, once. A
ConfigError naming fields is re-raised naming the options the user typed, so the one-line error
says `--backend: ...`, not `backends: ...`.
"""

from __future__ import annotations

from typing import TypeVar

import click

from ..schema import ConfigError

T = TypeVar("T")


def from_options(cls: type[T], **fields) -> T:
    """`cls(**fields)`, inside a click command whose options are named as `cls`'s fields."""
    try:
        return cls(**fields)
    except ConfigError as e:
        flags = {p.name: p.opts[0] for p in click.get_current_context().command.params if p.opts}
        keys = ", ".join(flags.get(key, key) for key in e.path.split(", "))
        raise ConfigError(keys, e.expected, e.got, e.source) from None
