"""Check emulator JSON against Google's own discovery documents (shipped in google-api-python-client)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient


@cache
def document(api: str) -> dict[str, Any]:
    path = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / f"{api}.v1.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def violations(api: str, schema_name: str, value: Any) -> list[str]:
    """Paths where `value` breaks schema `schema_name`: unknown keys, wrong types, bad enum values."""
    return _check(document(api)["schemas"], {"$ref": schema_name}, value, schema_name)


def _check(schemas: dict[str, Any], schema: dict[str, Any], value: Any, path: str) -> list[str]:
    if "$ref" in schema:
        schema = schemas[schema["$ref"]]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        out = []
        for key, sub in value.items():
            if key in props:
                out += _check(schemas, props[key], sub, f"{path}.{key}")
            elif extra:
                out += _check(schemas, extra, sub, f"{path}.{key}")
            else:
                out.append(f"{path}.{key}: not in the schema")
        return out
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: expected an array"]
        return [
            v for i, item in enumerate(value) for v in _check(schemas, schema["items"], item, f"{path}[{i}]")
        ]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} not in enum"]
    expected = {"string": str, "boolean": bool, "integer": (int, str), "number": (int, float)}.get(kind or "")
    if expected and not isinstance(value, expected):
        return [f"{path}: expected {kind}, got {type(value).__name__}"]
    if (
        kind == "string"
        and schema.get("format") in ("int64", "uint64")
        and not str(value).lstrip("-").isdigit()
    ):
        return [f"{path}: {value!r} is not an int64 string"]
    return []
