"""Type checks for the typed settings objects the configs instantiate.

Dataclass annotations are not enforced by Python; a YAML or command-line value of
the wrong type (``train.epochs=ten``) would otherwise surface as an obscure error
hours later. Each settings class calls :func:`check_types` from ``__post_init__``,
which raises a ValueError naming the config key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin in (tuple, list):
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values"
        return "a list"
    return getattr(tp, "__name__", str(tp))


def _matches(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return False
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        item = args[0] if args else Any
        return all(_matches(v, item) for v in value)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def check_types(settings: Any, prefix: str) -> None:
    """Raises ValueError("<prefix>.<field> must be <type>, got <value>") for the first
    field whose value does not fit its annotation."""
    hints = typing.get_type_hints(type(settings))
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        expected = hints[field.name]
        if not _matches(value, expected):
            raise ValueError(f"{prefix}.{field.name} must be {_describe(expected)}, got {value!r}")
