"""One validator for the JSON facegen reads back (recipes): each value checked against its dataclass field's type.

JSON knows numbers, text, true/false, lists and null; a field typed `float` takes any number, `int` only whole
ones, `tuple[X, ...]` a list of X. Ranges and meanings are the dataclass's own `__post_init__` checks, which run
after the types are right.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from facegen.errors import FacegenError


class _WrongType(Exception):
    pass


def check_fields(cls: type, values: dict[str, Any], source: str) -> dict[str, Any]:
    """`values` converted to the field types of dataclass `cls`; unknown, missing or mistyped fields are refused.

    The message names `source` and the field, in one line. JSON lists become tuples, whole numbers floats where
    the field is a float.
    """
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise FacegenError(f"{source} has fields facegen does not know: {', '.join(unknown)}. Remove them.")
    required = [
        name for name, field in fields.items()
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    ]  # fmt: skip
    missing = [name for name in required if name not in values]
    if missing:
        raise FacegenError(f"{source} lacks the field {missing[0]!r}.")
    converted = {}
    for name, value in values.items():
        try:
            converted[name] = _convert(value, hints[name])
        except _WrongType:
            shown = json.dumps(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise FacegenError(f"{source}: {name} must be {_describe(hints[name])}, not {shown}.") from None
    return converted


def _convert(value: Any, annotation: Any) -> Any:
    if _is_union(annotation):
        for option in typing.get_args(annotation):
            try:
                return _convert(value, option)
            except _WrongType:
                continue
        raise _WrongType
    if annotation is type(None):
        if value is None:
            return None
        raise _WrongType
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _WrongType
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _WrongType
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _WrongType
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _WrongType
    if typing.get_origin(annotation) is tuple:
        (item_type, _ellipsis) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise _WrongType
        return tuple(_convert(item, item_type) for item in value)
    raise TypeError(f"check_fields cannot check fields of type {annotation!r}")


def _is_union(annotation: Any) -> bool:
    return isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union


def _describe(annotation: Any) -> str:
    if _is_union(annotation):
        return " or ".join(_describe(option) for option in typing.get_args(annotation))
    if typing.get_origin(annotation) is tuple:
        plural = {"a whole number": "whole numbers", "a number": "numbers", "text": "texts"}
        item = _describe(typing.get_args(annotation)[0])
        return f"a list of {plural.get(item, item)}"
    names = {type(None): "null", bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    return names[annotation]
