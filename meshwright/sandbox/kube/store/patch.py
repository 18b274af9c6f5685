"""The four patch forms: JSON merge, JSON Patch, strategic merge and server-side apply.

Strategic merge follows the list merge keys of the built-in types; server-side apply tracks the
fields each manager applied (managedFields, FieldsV1) and removes those a manager stopped
applying when no other manager owns them; whose field is whose, and when an apply conflicts with
another manager, is decided in `managed.py`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch

from meshwright.sandbox import clock
from meshwright.sandbox.kube.status import KubeError, bad_request
from meshwright.sandbox.kube.store import managed

# List fields whose items merge by a key (strategic merge patch and server-side apply).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "secrets": "name",
    "webhooks": "name",  # admissionregistration webhooks: patchMergeKey=name
}
Path = tuple[str, ...]


def merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


# -- JSON merge patch (RFC 7386) ---------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(target: dict[str, Any], ops: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = jsonpatch.apply_patch(target, ops)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as e:
        raise KubeError(422, f"the server rejected our request due to an error in our request: {e}") from None
    return result


# -- strategic merge patch -----------------------------------------------------------------------


def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = dict(target)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            out[field] = [v for v in out.get(field) or [] if v not in value]
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = _merge_list(key, out[key], value)
        else:
            merged = strategic_merge(out.get(key), value) if isinstance(value, dict) else copy.deepcopy(value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
    if retain is not None:
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(field: str, current: list[Any], patch: list[Any]) -> list[Any]:
    key = merge_key(field, current + patch)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return [i for i in copy.deepcopy(patch) if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    out = copy.deepcopy(current)
    for item in patch:
        index = next(
            (n for n, c in enumerate(out) if isinstance(c, dict) and c.get(key) == item.get(key)), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
        elif index is None:
            out.append({k: v for k, v in item.items() if not k.startswith("$")})
        else:
            out[index] = strategic_merge(out[index], item)
    return out


# -- server-side apply ---------------------------------------------------------------------------


def _item_key(field: str, item: dict[str, Any], key: str) -> str:
    return "k:" + json.dumps({key: item.get(key)}, separators=(",", ":"))


def field_paths(obj: Any, prefix: Path = ()) -> set[Path]:
    """The leaf field paths set in `obj`, with associative list items keyed as FieldsV1 does."""
    paths: set[Path] = set()
    if not isinstance(obj, dict):
        return {prefix} if prefix else paths
    for key, value in obj.items():
        if key.startswith("$"):
            continue  # patch directives ($setElementOrder/..., $patch) are never owned
        here = (*prefix, f"f:{key}")
        if isinstance(value, dict) and value:
            paths |= field_paths(value, here)
        elif (
            isinstance(value, list)
            and (mk := merge_key(key, value))
            and all(isinstance(i, dict) for i in value)
        ):
            for item in value:
                item_path = (*here, _item_key(key, item, mk))
                paths.add((*item_path, "."))
                paths |= field_paths(item, item_path)
        else:
            paths.add(here)
    return paths


def _remove(obj: Any, path: Path) -> None:
    """Delete the field at `path` (FieldsV1 parts) if it is there."""
    node, parts = obj, list(path)
    while parts:
        part = parts.pop(0)
        if part == ".":
            return
        last = not parts or parts == ["."]
        if part.startswith("f:") and isinstance(node, dict):
            name = part[2:]
            if last:
                node.pop(name, None)
                return
            node = node.get(name)
        elif part.startswith("k:") and isinstance(node, list):
            want = json.loads(part[2:])
            match = next(
                (i for i in node if isinstance(i, dict) and all(i.get(k) == v for k, v in want.items())), None
            )
            if match is None:
                return
            if last:
                node.remove(match)
                return
            node = match
        else:
            return


def managed_entry(
    manager: str, operation: str, api_version: str, paths: set[Path], subresource: str | None = None
) -> dict[str, Any]:
    entry = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": clock.rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": managed.to_fields_v1(paths),
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def ownable(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {
        k: v
        for k, v in (obj.get("metadata") or {}).items()
        if k in ("labels", "annotations", "finalizers", "ownerReferences")
    }
    body = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind", "status")}
    return {**({"metadata": meta} if meta else {}), **body}


def server_side_apply(
    current: dict[str, Any] | None, applied: dict[str, Any], *, manager: str, force: bool = False
) -> dict[str, Any]:
    """The object after `manager` applies `applied` (a full intent) to `current`; 409 on conflicts unless forced."""
    if not manager:
        raise bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
    new_paths = field_paths(ownable(applied))
    base = copy.deepcopy(current) if current else {"metadata": {}}
    entries = list((base.get("metadata") or {}).get("managedFields") or [])
    mine = next((e for e in entries if e["manager"] == manager and e["operation"] == "Apply"), None)
    clashes = managed.conflicts(entries, mine, new_paths, base, applied)
    if clashes and not force and not _upgrading_client_side_apply(manager, base, clashes):
        raise managed.conflict_error(clashes)
    entries = managed.take_over(entries, mine, {path for _, path in clashes})
    others: set[Path] = set()
    for e in entries:
        if e is not mine:
            others |= managed.from_fields_v1(e.get("fieldsV1") or {})
    if mine:
        for path in sorted(
            managed.from_fields_v1(mine.get("fieldsV1") or {}) - new_paths - others, key=len, reverse=True
        ):
            _remove(base, path)
    result = _apply_merge(base, applied)
    result.setdefault("metadata", {})
    kept = [e for e in entries if e is not mine]
    result["metadata"]["managedFields"] = [
        *kept,
        managed_entry(manager, "Apply", applied.get("apiVersion", ""), new_paths),
    ]
    return dict(result)


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _upgrading_client_side_apply(manager: str, live: dict[str, Any], clashes: list[tuple[Any, Path]]) -> bool:
    """The server's lastAppliedManager: `kubectl` may take over, without conflicts, the fields its
    client-side last-applied-configuration holds (kubectl apply --server-side after kubectl apply)."""
    note = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if manager != "kubectl" or not note:
        return False
    try:
        last = json.loads(note)
    except ValueError:
        return False
    allowed = field_paths(ownable(last)) if isinstance(last, dict) else set()
    return all(path in allowed for _, path in clashes)


def _apply_merge(target: Any, applied: Any) -> Any:
    if not isinstance(applied, dict) or not isinstance(target, dict):
        return copy.deepcopy(applied)
    out = dict(target)
    for key, value in applied.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list) and isinstance(out.get(key), list) and merge_key(key, value):
            out[key] = _merge_list(key, out[key], value)
        else:
            out[key] = _apply_merge(out.get(key), value)
    return out


def record_update(
    obj: dict[str, Any], *, manager: str, changed: dict[str, Any], subresource: str | None = None
) -> None:
    """Note in managedFields that `manager` set the fields of `changed` (a non-apply write).

    The manager keeps what it owned before and gains what it changed; other managers lose those fields.
    """
    meta = obj.setdefault("metadata", {})
    entries = list(meta.get("managedFields") or [])
    mine = next((e for e in entries if e["manager"] == manager and e["operation"] == "Update"), None)
    changed_paths = field_paths(ownable(changed))
    owned = managed.from_fields_v1(mine.get("fieldsV1") or {}) if mine is not None else set()
    entries = managed.take_over([e for e in entries if e is not mine], None, changed_paths)
    if changed_paths | owned:
        entries.append(
            managed_entry(manager, "Update", obj.get("apiVersion", ""), changed_paths | owned, subresource)
        )
    meta["managedFields"] = entries
