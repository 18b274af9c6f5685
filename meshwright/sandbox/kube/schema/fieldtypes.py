"""Field types of the kinds the sandbox models, checked the way the API server's JSON decoder checks them.

A real server decodes every body into Go structs first: a string where an int32 belongs fails the
request before defaulting, admission or validation (400 on create and update, 422 on a patch), and
nothing is stored. Only fields listed here are checked; unknown fields pass untouched, and nulls in
known struct fields are dropped as Go's round trip drops them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scalar:
    go: str
    accepts: tuple[type, ...]


@dataclass(frozen=True)
class Struct:
    go: str
    fields: Mapping[str, FieldType] = field(default_factory=dict)


@dataclass(frozen=True)
class ListOf:
    item: FieldType


@dataclass(frozen=True)
class MapOf:
    value: FieldType


FieldType = Scalar | Struct | ListOf | MapOf


@dataclass(frozen=True)
class TypeProblem:
    """Where the body does not decode: the Go struct holding the field, its JSON path, both types."""

    struct: str
    path: str
    got: str
    want: str

    def message(self) -> str:
        if self.got.startswith(("illegal base64", "quantities must")):
            return self.got
        return f"json: cannot unmarshal {self.got} into Go struct field {self.struct}.{self.path} of type {self.want}"


STRING = Scalar("string", (str,))
INT32 = Scalar("int32", (int,))
INT64 = Scalar("int64", (int,))
BOOL = Scalar("bool", (bool,))
BYTES = Scalar("[]uint8", (str,))  # base64 in JSON
INT_OR_STRING = Scalar("intstr.IntOrString", (int, str))
QUANTITY = Scalar("resource.Quantity", (int, float, str))
ANY = Scalar("", ())  # anything decodes
QUANTITY_PATTERN = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
STRINGS = ListOf(STRING)
STRING_MAP = MapOf(STRING)


def go_name(t: FieldType) -> str:
    if isinstance(t, Scalar):
        return t.go
    if isinstance(t, Struct):
        return t.go
    if isinstance(t, ListOf):
        return f"[]{go_name(t.item)}"
    return f"map[string]{go_name(t.value)}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


BITS = {"int32": 31, "int64": 63, "intstr.IntOrString": 31}


def _fits(t: Scalar, value: Any) -> bool:
    if not t.accepts:
        return True
    if isinstance(value, bool):
        return bool in t.accepts
    if isinstance(value, float) and int in t.accepts and float not in t.accepts:
        return value.is_integer() and _in_range(t, int(value))
    if isinstance(value, int) and int in t.accepts:
        return _in_range(t, value)
    return isinstance(value, t.accepts)


def _in_range(t: Scalar, value: int) -> bool:
    bits = BITS.get(t.go)
    return bits is None or -(2**bits) <= value < 2**bits


def _zero(t: FieldType) -> Any:
    """What Go decodes a JSON null into inside a list or map: the element type's zero value."""
    if isinstance(t, Struct | MapOf):
        return {}
    if t is STRING or t is BYTES:
        return ""
    if t in (INT32, INT64):
        return 0
    return False if t is BOOL else None


def _bad_base64(value: str) -> int | None:
    """Index of the first byte Go's base64 decoder refuses, or None."""
    try:
        base64.b64decode(value, validate=True)
        return None
    except (binascii.Error, ValueError):
        alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
        return next((i for i, ch in enumerate(value) if ch not in alphabet), len(value))


def _or_zero(t: FieldType, value: Any) -> Any:
    return _zero(t) if value is None else value


class _Checker:
    def __init__(self) -> None:
        self.problem: TypeProblem | None = None

    def value(self, t: FieldType, value: Any, struct: str, path: str) -> Any:
        """`value` with nulls of known struct fields dropped; records the first problem met."""
        if self.problem is not None:
            return value
        if isinstance(t, Scalar):
            return self._scalar(t, value, struct, path)
        if isinstance(t, ListOf) and isinstance(value, list):
            return [self.value(t.item, _or_zero(t.item, item), struct, path) for item in value]
        if isinstance(t, MapOf) and isinstance(value, dict):
            return {k: self.value(t.value, _or_zero(t.value, v), struct, path) for k, v in value.items()}
        if isinstance(t, Struct) and isinstance(value, dict):
            return self.struct(t, value, path)
        self.problem = TypeProblem(struct, path, _json_type(value), go_name(t))
        return value

    def _scalar(self, t: Scalar, value: Any, struct: str, path: str) -> Any:
        if value is None or _fits(t, value):
            if t is BYTES and isinstance(value, str) and (at := _bad_base64(value)) is not None:
                self.problem = TypeProblem(struct, path, f"illegal base64 data at input byte {at}", t.go)
            if t is QUANTITY and isinstance(value, str) and not QUANTITY_PATTERN.match(value):
                self.problem = TypeProblem(
                    struct,
                    path,
                    f"quantities must match the regular expression '{QUANTITY_PATTERN.pattern}'",
                    t.go,
                )
            return int(value) if isinstance(value, float) and t.accepts == (int,) else value
        overflow = _json_type(value) == "number" and int in t.accepts
        got = f"number {value}" if overflow else _json_type(value)
        self.problem = TypeProblem(struct, path, got, t.go)
        return value

    def struct(self, t: Struct, obj: dict[str, Any], path: str) -> dict[str, Any]:
        out = {}
        for key, value in obj.items():
            known = t.fields.get(key)
            if known is None:
                out[key] = value
            elif value is not None:
                out[key] = self.value(known, value, t.go.split(".")[-1], f"{path}.{key}".lstrip("."))
        return out


def check(t: Struct, obj: dict[str, Any]) -> tuple[dict[str, Any], TypeProblem | None]:
    """The object as the server would keep it after decoding, and the first decoding problem."""
    checker = _Checker()
    cleaned = checker.struct(t, obj, "")
    return cleaned, checker.problem
