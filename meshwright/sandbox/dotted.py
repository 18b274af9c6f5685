"""The one dotted-path getter of the sandbox: `get(obj, "metadata.labels.app")`.

List filters (Compute `filter=`), field selectors and table columns all read nested JSON this way.
A step through anything that is not a mapping ends the walk: stored objects may hold any shape,
and reading one must never raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def get(obj: Any, path: str, default: Any = None) -> Any:
    """The value at `path` (dots between keys; leading/trailing dots ignored), or `default`."""
    node = obj
    for part in path.strip(".").split("."):
        if not isinstance(node, Mapping):
            return default
        node = node.get(part)
    return default if node is None else node
