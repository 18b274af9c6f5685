"""Field ownership between managers (managedFields): who set what, and when an apply conflicts.

A server-side apply that would change a field another manager owns (by Apply or by Update) to a
different value is a 409 Conflict listing every such field, unless the client forces it; forcing
takes the fields over. An Update adds what it changed to its manager's set and takes those fields
from the others, without conflicts, as the real server does.

The FieldsV1 codec lives here too (patch.py builds its entries with it): ownership is read and
written in that form, so this module needs nothing from the patches that use it.
"""

from __future__ import annotations

import json
from typing import Any

from meshwright.sandbox.kube.status import KubeError

Path = tuple[str, ...]
MISSING = object()


# -- FieldsV1: a set of field paths <-> the nested `f:`/`k:` tree a managedFields entry holds ----


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for key, sub in tree.items():
        here = (*prefix, key)
        if sub:
            paths |= from_fields_v1(sub, here)
        else:
            paths.add(here)
    return paths


# -- ownership and conflicts ------------------------------------------------------------------------


def value_at(obj: Any, path: Path) -> Any:
    """The value a FieldsV1 path points at (MISSING if it is not there)."""
    node = obj
    for part in path:
        if part == ".":
            return node
        if part.startswith("f:") and isinstance(node, dict):
            node = node.get(part[2:], MISSING)
        elif part.startswith("k:") and isinstance(node, list):
            want = json.loads(part[2:])
            node = next(
                (i for i in node if isinstance(i, dict) and all(i.get(k) == v for k, v in want.items())),
                MISSING,
            )
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node


def dotted_path(path: Path) -> str:
    """`.spec.template.spec.containers[name="nginx"].image`, as conflict messages name a field."""
    text = ""
    for part in path:
        if part.startswith("f:"):
            text += "." + part[2:]
        elif part.startswith("k:"):
            keys = json.loads(part[2:])
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
    return text


def conflicts(
    entries: list[dict[str, Any]], mine: dict[str, Any] | None, paths: set[Path], current: Any, applied: Any
) -> list[tuple[dict[str, Any], Path]]:
    """(other manager's entry, field) for every applied field another manager owns with another value."""
    found = []
    for entry in entries:
        if entry is mine:
            continue
        owned = _paths(entry)
        for path in sorted(paths & owned):
            if path[-1] != "." and value_at(current, path) != value_at(applied, path):
                found.append((entry, path))
    return found


def conflict_error(found: list[tuple[dict[str, Any], Path]]) -> KubeError:
    by_manager: dict[tuple[str, str], list[str]] = {}
    for entry, path in found:
        by_manager.setdefault((entry["manager"], entry.get("apiVersion", "")), []).append(dotted_path(path))
    n = len(found)
    parts = []
    for (manager, version), fields in by_manager.items():
        if len(fields) == 1 and n == 1:
            parts.append(f'conflict with "{manager}" using {version}: {fields[0]}')
        else:
            parts.append(
                f'conflicts with "{manager}" using {version}:\n' + "\n".join(f"- {f}" for f in fields)
            )
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{e["manager"]}" using {e.get("apiVersion", "")}',
            "field": dotted_path(p),
        }
        for e, p in found
    ]
    return KubeError(
        409,
        f"Apply failed with {n} conflict{'s' if n > 1 else ''}: " + "\n".join(parts),
        reason="Conflict",
        details={"causes": causes},
    )


def take_over(
    entries: list[dict[str, Any]], keep: dict[str, Any] | None, paths: set[Path]
) -> list[dict[str, Any]]:
    """Other managers' entries without `paths` (entries left with nothing go)."""
    out = []
    for entry in entries:
        if entry is keep:
            out.append(entry)
            continue
        left = _paths(entry) - paths
        if left:
            out.append({**entry, "fieldsV1": to_fields_v1(left)})
    return out


def _paths(entry: dict[str, Any]) -> set[Path]:
    fields = entry.get("fieldsV1")
    return from_fields_v1(fields) if isinstance(fields, dict) else set()
