"""Label selectors (the full set-based syntax) and field selectors."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from meshwright.sandbox import dotted
from meshwright.sandbox.kube.status import bad_request

Predicate = Callable[[dict[str, Any]], bool]
_SET = re.compile(r"^\s*([^\s!=,()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([^\s!=,()]+)\s*(==|=|!=)\s*([^\s!=,()]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=,()]+)\s*$")


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> Callable[[dict[str, str]], bool]:
    if m := _SET.match(text):
        key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EQ.match(text):
        key, op, value = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS.match(text):
        negate, key = m.group(1) == "!", m.group(2)
        return lambda labels: (key in labels) != negate
    raise bad_request(f"unable to parse requirement: {text.strip()!r}")


def label_selector(selector: str | None) -> Predicate:
    if not selector:
        return lambda obj: True
    requirements = [_requirement(part) for part in _split(selector)]
    return lambda obj: all(r((obj.get("metadata") or {}).get("labels") or {}) for r in requirements)


def _field(obj: dict[str, Any], path: str) -> str:
    return str(dotted.get(obj, path, ""))


def field_selector(selector: str | None) -> Predicate:
    if not selector:
        return lambda obj: True
    checks = []
    for part in _split(selector):
        m = _EQ.match(part)
        if not m:
            raise bad_request(f"invalid field selector: {part.strip()!r}")
        path, op, value = m.groups()
        checks.append((path, op == "!=", value))
    return lambda obj: all((_field(obj, p) == v) != neg for p, neg, v in checks)
