"""Typed tables → frozen dataclasses, checked once, with key paths in every error.

Recipes and method options are plain frozen dataclasses. Their fields carry the checks
(`param(..., gt=0)`), so one generic builder validates every table the same way and the
rest of the code trusts what it gets.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin

from .errors import UserError


class ConfigError(UserError):
    """A bad value in a recipe or option table; str() is the one line a user sees."""

    def __init__(self, path: str, expected: str, got: Any = dataclasses.MISSING, source: str = ""):
        self.path, self.expected, self.got, self.source = path, expected, got, source
        super().__init__(self._line())

    def _line(self) -> str:
        got = "" if self.got is dataclasses.MISSING else f", got {_show(self.got)}"
        where = f"{self.source}: " if self.source else ""
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}expected {self.expected}{got}"

    def at(self, source: str) -> "ConfigError":
        """The same error, naming the file it came from."""
        return ConfigError(self.path, self.expected, self.got, source)


def _show(v: Any) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, dict):
        return "a table"
    return repr(v)


def param(default: Any = dataclasses.MISSING, *, gt: float | None = None, ge: float | None = None,
          le: float | None = None, lt: float | None = None, help: str = "") -> Any:
    """A dataclass field with range checks that `build` enforces."""
    meta = {"gt": gt, "ge": ge, "le": le, "lt": lt, "help": help}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for defaults")
    return dataclasses.field(default=default, metadata=meta)


def build(cls: type, table: Any, path: str = "") -> Any:
    """Build dataclass `cls` from a TOML table, rejecting unknown keys, wrong types and ranges."""
    if not isinstance(table, dict):
        raise ConfigError(path, "a table", table)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in table:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(_join(path, key), f"one of the known keys ({known})", key)
    values = {}
    for name, f in fields.items():
        sub = _join(path, name)
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(sub, "a value (this key is required)")
            continue
        v = coerce(hints[name], table[name], sub)
        _check_range(f, v, sub)
        values[name] = v
    return cls(**values)


def coerce(tp: Any, v: Any, path: str) -> Any:
    """Check `v` against annotation `tp`; lists become tuples, ints widen to floats."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, v, path)
    if origin is Literal:
        choices = get_args(tp)
        if v not in choices:
            raise ConfigError(path, "one of " + ", ".join(_show(c) for c in choices), v)
        return v
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if v is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(a, v, path)
            except ConfigError as e:
                errors.append(e.expected)
        raise ConfigError(path, " or ".join(errors), v)
    if origin is tuple:
        if not isinstance(v, (list, tuple)):
            raise ConfigError(path, "a list", v)
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(args[0], x, f"{path}[{i}]") for i, x in enumerate(v))
        if len(v) != len(args):
            raise ConfigError(path, f"a list of {len(args)} items", v)
        return tuple(coerce(a, x, f"{path}[{i}]") for i, (a, x) in enumerate(zip(args, v)))
    if origin is dict:
        if not isinstance(v, dict):
            raise ConfigError(path, "a table", v)
        kt, vt = get_args(tp)
        return {coerce(kt, k, path): coerce(vt, x, _join(path, k)) for k, x in v.items()}
    if tp is bool:
        if not isinstance(v, bool):
            raise ConfigError(path, "true or false", v)
        return v
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(path, "an integer", v)
        return v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(path, "a finite number", v)
        return float(v)
    if tp is str:
        if not isinstance(v, str):
            raise ConfigError(path, "a string", v)
        return v
    if tp is Any:
        return v
    raise TypeError(f"schema: unsupported annotation {tp!r} at {path}")


def _check_range(f: dataclasses.Field, v: Any, path: str) -> None:
    m = f.metadata
    if not m or v is None:
        return
    items = v if isinstance(v, tuple) else (v,)
    for x in items:
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            continue
        for op, bound, ok in (("> ", m.get("gt"), lambda a, b: a > b), (">= ", m.get("ge"), lambda a, b: a >= b),
                              ("< ", m.get("lt"), lambda a, b: a < b), ("<= ", m.get("le"), lambda a, b: a <= b)):
            if bound is not None and not ok(x, bound):
                lo = _bounds_text(m)
                raise ConfigError(path, f"a number {lo}", v)


def _bounds_text(m: dict) -> str:
    parts = [f"{sym} {m[k]}" for k, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if m.get(k) is not None]
    return " and ".join(parts)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def to_table(obj: Any) -> Any:
    """A dataclass back to plain TOML-able values (tuples → lists, None dropped)."""
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if v is None:
                continue
            out[f.name] = to_table(v)
        return out
    if isinstance(v := obj, (list, tuple)):
        return [to_table(x) for x in v]
    if isinstance(obj, dict):
        return {k: to_table(x) for k, x in obj.items() if x is not None}
    return obj
