"""Custom resources against their CRD's structural schema: defaults, pruning, types, enums, bounds.

What the apiextensions server does before storing a custom resource: fill `default`s, drop fields
the schema does not know (or refuse them when the client asked `fieldValidation=Strict`), drop
nulls of non-nullable fields, then validate. CEL rules (`x-kubernetes-validations`) and
`oneOf`/`anyOf` are not evaluated; everything else a 422 names here is the real server's wording.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from meshwright.sandbox.kube.schema.fielderrors import FieldError, invalid, not_supported, required, too_long

IMPLICIT = ("apiVersion", "kind", "metadata")
JSON_TYPES = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


@dataclass
class Outcome:
    """The object as it would be stored, what is wrong with it, and the fields the schema did not know."""

    obj: Any
    errors: list[FieldError] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def check(schema: dict[str, Any] | None, obj: dict[str, Any]) -> Outcome:
    if not isinstance(schema, dict):
        return Outcome(obj)
    out = Outcome(None)
    body = {k: v for k, v in obj.items() if k not in IMPLICIT}
    result = _node(schema, body, "", out)
    out.obj = {**{k: obj[k] for k in IMPLICIT if k in obj}, **(result if isinstance(result, dict) else {})}
    return out


def _type_ok(schema: dict[str, Any], value: Any) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, int | str) and not isinstance(value, bool)
    kind = schema.get("type")
    if not isinstance(kind, str) or kind not in JSON_TYPES:
        return True
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, JSON_TYPES[kind])


def _json_type(value: Any) -> str:
    for name, types in JSON_TYPES.items():
        if (
            name not in ("number",)
            and isinstance(value, types)
            and not (isinstance(value, bool) and name == "integer")
        ):
            return name
    return "number" if isinstance(value, float) else "null"


def _node(schema: dict[str, Any], value: Any, path: str, out: Outcome) -> Any:
    if not _type_ok(schema, value):
        kind = schema.get("type")
        out.errors.append(
            invalid(
                path,
                _json_type(value),
                f"{path or 'body'} in body must be of type {kind}: {json.dumps(_json_type(value))}",
            )
        )
        return value
    out.errors.extend(_bounds(schema, value, path))
    if isinstance(value, dict):
        return _object(schema, value, path, out)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_node(schema["items"], item, f"{path}[{i}]", out) for i, item in enumerate(value)]
    return value


def _object(schema: dict[str, Any], value: dict[str, Any], path: str, out: Outcome) -> dict[str, Any]:
    given = schema.get("properties")
    props: dict[str, Any] = given if isinstance(given, dict) else {}
    extra = schema.get("additionalProperties")
    keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True
    result: dict[str, Any] = {}
    for key, item in value.items():
        here = f"{path}.{key}" if path else key
        sub = props.get(key) if key in props else (extra if isinstance(extra, dict) else None)
        if sub is not None and not isinstance(sub, dict):
            sub = {}  # a malformed sub-schema constrains nothing
        if item is None and not (sub or {}).get("nullable"):
            continue  # pruned, as the server drops nulls of non-nullable fields
        if sub is not None:
            result[key] = _node(sub, item, here, out)
        elif (
            keep_unknown
            or extra is True
            or (schema.get("x-kubernetes-embedded-resource") and key in IMPLICIT)
        ):
            result[key] = item
        else:
            out.unknown.append(here)
    for key, sub in props.items():
        if key not in result and isinstance(sub, dict) and "default" in sub:
            result[key] = copy.deepcopy(sub["default"])
    wanted = schema.get("required")
    for key in wanted if isinstance(wanted, list) else []:
        if isinstance(key, str) and key not in result:
            out.errors.append(required(f"{path}.{key}" if path else key))
    return result


def _bounds(schema: dict[str, Any], value: Any, path: str) -> list[FieldError]:
    where = path or "body"
    errors = []
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        errors.append(not_supported(where, value, [str(v) for v in schema["enum"]]))
    if isinstance(value, str):
        if isinstance(schema.get("maxLength"), int) and len(value) > schema["maxLength"]:
            errors.append(too_long(where, schema["maxLength"]))
        if isinstance(schema.get("pattern"), str) and not _matches(schema["pattern"], value):
            errors.append(invalid(where, value, f"{where} in body should match '{schema['pattern']}'"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(schema.get("minimum"), int | float) and value < schema["minimum"]:
            errors.append(
                invalid(
                    where, value, f"{where} in body should be greater than or equal to {schema['minimum']}"
                )
            )
        if isinstance(schema.get("maximum"), int | float) and value > schema["maximum"]:
            errors.append(
                invalid(where, value, f"{where} in body should be less than or equal to {schema['maximum']}")
            )
    if (
        isinstance(value, list)
        and isinstance(schema.get("maxItems"), int)
        and len(value) > schema["maxItems"]
    ):
        errors.append(
            FieldError(
                where,
                "FieldValueTooMany",
                f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
            )
        )
    return errors


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:  # an RE2 construct Python does not read: the server's check cannot be repeated here
        return True
