"""Compute list `filter` expressions: `name = "meshwright-*"`, `priority != 900`, `name eq mesh-.*`,
joined with AND (parentheses allowed). OR is not supported and says so."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from meshwright.sandbox import dotted
from meshwright.sandbox.gcp.errors import invalid

Predicate = Callable[[dict[str, Any]], bool]
MAX_FILTER = 2048
_NESTED = re.compile(r"\([^()]*[*+}][^()]*\)[*+{?]")
_EXPR = re.compile(r"^\s*\(?\s*([A-Za-z][\w.]*)\s*(!=|=|:|\beq\b|\bne\b)\s*(.+?)\s*\)?\s*$")


def _value(item: dict[str, Any], path: str) -> str:
    node = dotted.get(item, path)
    if isinstance(node, bool):
        return str(node).lower()
    return "" if node is None else str(node)


def _one(text: str) -> Predicate:
    match = _EXPR.match(text)
    if not match:
        raise invalid(f"Invalid value for field 'filter': '{text.strip()}'. Invalid list filter expression.")
    field, op, raw = match.groups()
    want = raw.strip().strip('"')
    if op in ("eq", "ne"):
        pattern = _regex(want)
        return lambda item: (pattern.fullmatch(_value(item, field)) is not None) == (op == "eq")
    if op == ":":
        return lambda item: (
            (want == "*" and _value(item, field) != "") or fnmatch.fnmatchcase(_value(item, field), want)
        )
    return lambda item: fnmatch.fnmatchcase(_value(item, field), want) == (op == "=")


def _regex(text: str) -> re.Pattern[str]:
    """Compute evaluates `eq`/`ne` with RE2, which never backtracks; Python's `re` does, so a
    nested quantifier (`(a+)+`) is refused rather than left to hang a request thread."""
    if _NESTED.search(text):
        raise invalid(
            f"Invalid value for field 'filter': {text[:100]!r}. Nested repetition is not supported."
        )
    try:
        return re.compile(text)
    except re.error as err:
        raise invalid(
            f"Invalid value for field 'filter': {text[:100]!r}. Invalid regular expression: {err}."
        ) from None


def compile_filter(text: str | None) -> Predicate:
    if not text or not text.strip():
        return lambda item: True
    if len(text) > MAX_FILTER:
        raise invalid(f"Invalid value for field 'filter': longer than {MAX_FILTER} characters.")
    if re.search(r"\bOR\b", text):
        raise invalid("Invalid value for field 'filter': OR is not supported by the meshwright sandbox.")
    parts = [_one(p) for p in re.split(r"\s+AND\s+|\)\s*\(", text) if p.strip()]
    return lambda item: all(p(item) for p in parts)
