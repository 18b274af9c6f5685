"""Rules every write and list follows: names from generateName, resourceVersion freshness, generation,
status kept out of main-resource writes, and list paging (`limit`/`continue`)."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.status import bad_request, conflict


def spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def name_new(meta: dict[str, Any]) -> None:
    """A name from generateName when none is given (validation then checks either)."""
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]


def same_name(obj: dict[str, Any], name: str) -> None:
    if obj["metadata"].get("name") not in (None, name):
        raise bad_request(
            f"the name of the object ({obj['metadata'].get('name')}) does not match the name on the URL ({name})"
        )


def fresh(rt: ResourceType, obj: dict[str, Any], current: dict[str, Any]) -> None:
    """A write that names a resourceVersion must name the current one."""
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    if rv and rv != current["metadata"]["resourceVersion"]:
        raise conflict(rt.plural, current["metadata"]["name"], rt.group)


def page(query: dict[str, str]) -> tuple[int, int]:
    """Where a page starts and how long it is (0: everything); a bad `continue` or `limit` is a 400."""
    limit_text, token = query.get("limit") or "0", query.get("continue") or ""
    if not limit_text.isdigit():
        raise bad_request(f"invalid limit {limit_text[:20]!r}")
    if not token:
        return 0, int(limit_text)
    try:
        start = json.loads(base64.urlsafe_b64decode(token.encode()))["start"]
    except (ValueError, KeyError, TypeError):
        raise bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from None
    if not isinstance(start, int) or start < 0:
        raise bad_request("continue key is not valid")
    return start, int(limit_text)


def continue_token(rv: str, start: int) -> str:
    return base64.urlsafe_b64encode(
        json.dumps({"v": "meta.k8s.io/v1", "rv": int(rv), "start": start}).encode()
    ).decode()


def next_generation(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """A spec that differs once defaulted bumps the generation; a write that changes nothing else keeps it."""
    if old is not None and spec_part(obj) != spec_part(old):
        obj["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1


def keep_status(rt: ResourceType, new: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The main endpoint never changes status."""
    if rt.has_status:
        new["status"] = current.get("status")
        if new["status"] is None:
            new.pop("status")
    return new
