"""Typed tables → frozen dataclasses, checked once, with key paths in every error.

Recipes and method options are plain frozen dataclasses. Their fields carry the checks
(`param(..., gt=0)`), so one generic builder validates every table the same way and the
rest of the code trusts what it gets.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import types
import typing
from typing import Any, Literal, get_args, get_origin
from collections.abc import Callable

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

    def at(self, source: str) -> ConfigError:
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
    if origin in _COMPOUND:
        return _COMPOUND[origin](get_args(tp), v, path)
    if tp is Any:
        return v
    if tp in _SCALARS:
        expected, accepts, convert = _SCALARS[tp]
        if not accepts(v):
            raise ConfigError(path, expected, v)
        return convert(v)
    raise TypeError(f"schema: unsupported annotation {tp!r} at {path}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)  # TOML's true is not 1


# annotation → (what the error says is expected, the check, the conversion)
_SCALARS: dict[type, tuple[str, Callable[[Any], bool], Callable[[Any], Any]]] = {
    bool: ("true or false", lambda v: isinstance(v, bool), lambda v: v),
    int: ("an integer", lambda v: _is_number(v) and isinstance(v, int), lambda v: v),
    float: ("a finite number", lambda v: _is_number(v) and math.isfinite(v), float),
    str: ("a string", lambda v: isinstance(v, str), lambda v: v),
}


def _coerce_literal(choices: tuple, v: Any, path: str) -> Any:
    if v not in choices:
        raise ConfigError(path, "one of " + ", ".join(_show(c) for c in choices), v)
    return v


def _coerce_dict(args: tuple, v: Any, path: str) -> dict:
    if not isinstance(v, dict):
        raise ConfigError(path, "a table", v)
    kt, vt = args
    return {coerce(kt, k, path): coerce(vt, x, _join(path, k)) for k, x in v.items()}


def _coerce_union(args: tuple, v: Any, path: str) -> Any:
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


def _coerce_tuple(args: tuple, v: Any, path: str) -> tuple:
    if not isinstance(v, (list, tuple)):
        raise ConfigError(path, "a list", v)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce(args[0], x, f"{path}[{i}]") for i, x in enumerate(v))
    if len(v) != len(args):
        raise ConfigError(path, f"a list of {len(args)} items", v)
    return tuple(coerce(a, x, f"{path}[{i}]") for i, (a, x) in enumerate(zip(args, v, strict=True)))


# annotation origin → its coercion, given the annotation's arguments
_COMPOUND: dict[Any, Callable[[tuple, Any, str], Any]] = {
    Literal: _coerce_literal, typing.Union: _coerce_union, types.UnionType: _coerce_union,
    tuple: _coerce_tuple, dict: _coerce_dict,
}

_BOUNDS = (("gt", operator.gt), ("ge", operator.ge), ("lt", operator.lt), ("le", operator.le))


def _check_range(f: dataclasses.Field, v: Any, path: str) -> None:
    m = f.metadata
    if not m or v is None:
        return
    for x in v if isinstance(v, tuple) else (v,):
        if _is_number(x) and any(m.get(k) is not None and not ok(x, m[k]) for k, ok in _BOUNDS):
            raise ConfigError(path, f"a number {_bounds_text(m)}", v)


def _bounds_text(m: dict) -> str:
    symbols = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
    parts = [f"{sym} {m[k]}" for k, sym in symbols if m.get(k) is not None]
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
