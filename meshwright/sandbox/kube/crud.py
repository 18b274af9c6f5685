"""The write and read verbs of one cluster's API, with the real server's rules and status codes.

Controllers hook in through `admit` (before a write is stored) and `react` (after it is).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import yaml

from meshwright.sandbox.kube import patch as p
from meshwright.sandbox.kube.objects import Key, ObjectStore
from meshwright.sandbox.kube.registry import Registry, ResourceType
from meshwright.sandbox.kube.selectors import field_selector, label_selector
from meshwright.sandbox.kube.status import (
    KubeError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
)

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAMED = {"Namespace", "Service"}  # names that must be DNS-1123 labels


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Hooks(Protocol):
    def admit(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None: ...

    def react(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None: ...

    def deleted(self, rt: ResourceType, obj: dict[str, Any]) -> None: ...


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class Cluster:
    """Objects of one cluster and the verbs on them. All writes hold `lock`."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.lock = threading.RLock()
        self.registry = Registry()
        self.store = ObjectStore(directory)
        self.hooks: Hooks | None = None
        for crd in self.store.list("apiextensions.k8s.io/customresourcedefinitions"):
            self.registry.register_crd(crd)

    # -- reads -------------------------------------------------------------------------------

    @staticmethod
    def key(rt: ResourceType, namespace: str | None, name: str) -> Key:
        return (rt.key, namespace or "" if rt.namespaced else "", name)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(self.key(rt, namespace, name))
        if obj is None:
            raise not_found(rt.plural, name, rt.group)
        return self._versioned(rt, obj)

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.store.get(self.key(rt, namespace, name))

    @staticmethod
    def _versioned(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        return obj

    def select(
        self, rt: ResourceType, namespace: str | None, *, labels: str | None = None, fields: str | None = None
    ) -> list[dict[str, Any]]:
        match_labels, match_fields = label_selector(labels), field_selector(fields)
        matches = self.store.list(rt.key, namespace, where=lambda o: match_labels(o) and match_fields(o))
        return [self._versioned(rt, o) for o in matches]

    def list(self, rt: ResourceType, namespace: str | None, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            items = self.select(
                rt, namespace, labels=query.get("labelSelector"), fields=query.get("fieldSelector")
            )
            rv = str(self.store.rv)
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    # -- writes ------------------------------------------------------------------------------

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        *,
        manager: str = "",
        dry_run: bool = False,
        applied: bool = False,
    ) -> dict[str, Any]:
        obj = self._check_body(rt, namespace, body)
        meta = obj["metadata"]
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise invalid(rt.kind, "", "metadata.name: Required value: name or generateName is required")
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        self._check_name(rt, meta["name"])
        with self.lock:
            self._check_namespace(rt, namespace)
            key = self.key(rt, namespace, meta["name"])
            if self.store.get(key) is not None:
                raise already_exists(rt.plural, meta["name"], rt.group)
            for field in (
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "managedFields",
                "selfLink",
            ):
                meta.pop(field, None)
            if rt.has_status:
                obj.pop("status", None)
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
            if rt.namespaced:
                meta["namespace"] = namespace
            if applied:
                paths = p.field_paths(p.ownable(body))
                meta["managedFields"] = [p.managed_entry(manager, "Apply", rt.api_version, paths)]
            else:
                p.record_update(obj, manager=manager or "unknown", changed=obj)
            return self._commit(rt, key, obj, None, dry_run=dry_run)

    def _check_body(self, rt: ResourceType, namespace: str | None, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        if obj.get("apiVersion") not in (None, rt.api_version) or obj.get("kind") not in (None, rt.kind):
            raise bad_request(
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version ({rt.api_version})"
                if obj.get("apiVersion") != rt.api_version
                else f"the kind in the data ({obj.get('kind')}) does not match the expected kind ({rt.kind})"
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        return obj

    def _check_name(self, rt: ResourceType, name: str) -> None:
        pattern = _DNS_LABEL if rt.kind in _LABEL_NAMED else _DNS_SUBDOMAIN
        limit = 63 if rt.kind in _LABEL_NAMED else 253
        if rt.kind.endswith("Role") or rt.kind.endswith("Binding"):
            return  # RBAC names may hold ':' (system:...)
        if len(name) > limit or not pattern.match(name):
            raise invalid(
                rt.kind,
                name,
                f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 name must consist of lower case alphanumeric characters, '-' or '.'",
            )

    def _check_namespace(self, rt: ResourceType, namespace: str | None) -> None:
        if not rt.namespaced:
            return
        ns = self.store.get(("/namespaces", "", namespace or ""))
        if ns is None:
            raise not_found("namespaces", namespace or "")
        if (ns.get("status") or {}).get("phase") == "Terminating":
            raise KubeError(
                403,
                f"{rt.plural} is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                reason="Forbidden",
            )

    def _commit(
        self,
        rt: ResourceType,
        key: Key,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        if self.hooks:
            self.hooks.admit(rt, obj, old)
        if dry_run:
            return obj
        stored = self.store.put(key, obj)
        if self.hooks:
            self.hooks.react(rt, copy.deepcopy(stored), old)
        return stored

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        manager: str = "",
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        obj = self._check_body(rt, namespace, body)
        if obj["metadata"].get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({obj['metadata'].get('name')}) does not match the name on the URL ({name})"
            )
        with self.lock:
            current = self.get(rt, namespace, name)
            rv = obj["metadata"].get("resourceVersion")
            if rv and rv != current["metadata"]["resourceVersion"]:
                raise conflict(rt.plural, name, rt.group)
            p.record_update(
                obj,
                manager=manager or "unknown",
                changed=obj if subresource is None else {"status": obj.get("status")},
                subresource=subresource,
            )
            return self._replace(rt, namespace, current, obj, subresource=subresource, dry_run=dry_run)

    def _replace(
        self,
        rt: ResourceType,
        namespace: str | None,
        current: dict[str, Any],
        new: dict[str, Any],
        *,
        subresource: str | None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        meta = new.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "namespace", "name", "generation"):
            if field in current["metadata"]:
                meta[field] = current["metadata"][field]
        meta.setdefault("managedFields", current["metadata"].get("managedFields", []))
        if subresource == "status":
            result = {**copy.deepcopy(current), "status": new.get("status")}
            result["metadata"]["managedFields"] = meta["managedFields"]
        else:
            result = new
            if rt.has_status:
                result["status"] = current.get("status")
                if result["status"] is None:
                    result.pop("status")
            if _spec_part(result) != _spec_part(current):
                meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        key = self.key(rt, namespace, current["metadata"]["name"])
        return self._commit(rt, key, result, current, dry_run=dry_run)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: bytes,
        content_type: str,
        *,
        manager: str = "",
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            current = self.find(rt, namespace, name)
            if content_type == "application/apply-patch+yaml":
                return self._apply(
                    rt,
                    namespace,
                    name,
                    body,
                    current,
                    manager=manager,
                    subresource=subresource,
                    dry_run=dry_run,
                )
            if current is None:
                raise not_found(rt.plural, name, rt.group)
            patch_body = _decode(body, content_type)
            patched = self._patched(rt, current, patch_body, content_type)
            rv = (patched.get("metadata") or {}).get("resourceVersion")
            if rv and rv != current["metadata"]["resourceVersion"]:
                raise conflict(rt.plural, name, rt.group)
            p.record_update(
                patched,
                manager=manager or "unknown",
                changed=patch_body if isinstance(patch_body, dict) else {},
                subresource=subresource,
            )
            return 200, self._replace(
                rt, namespace, self._versioned(rt, current), patched, subresource=subresource, dry_run=dry_run
            )

    def _patched(
        self, rt: ResourceType, current: dict[str, Any], patch_body: Any, content_type: str
    ) -> dict[str, Any]:
        if content_type == "application/json-patch+json":
            return p.json_patch(current, patch_body)
        if not isinstance(patch_body, dict):
            raise bad_request("the patch must be a JSON object")
        if content_type == "application/merge-patch+json":
            return dict(p.merge_patch(current, patch_body))
        if content_type == "application/strategic-merge-patch+json":
            if rt.custom:
                raise KubeError(
                    415,
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                )
            return dict(p.strategic_merge(current, patch_body))
        raise KubeError(
            415, f"the body of the request was in an unknown format: {content_type or 'no content type'}"
        )

    def _apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: bytes,
        current: dict[str, Any] | None,
        *,
        manager: str,
        subresource: str | None,
        dry_run: bool,
    ) -> tuple[int, dict[str, Any]]:
        applied = self._check_body(rt, namespace, _decode(body, "application/apply-patch+yaml"))
        if applied["metadata"].get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({applied['metadata'].get('name')}) does not match the name on the URL ({name})"
            )
        applied["metadata"]["name"] = name
        if current is None:
            if not manager:
                raise bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
            return 201, self.create(rt, namespace, applied, manager=manager, dry_run=dry_run, applied=True)
        result = p.server_side_apply(current, applied, manager=manager)
        return 200, self._replace(
            rt, namespace, self._versioned(rt, current), result, subresource=subresource, dry_run=dry_run
        )

    def delete(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self.lock:
            key = self.key(rt, namespace, name)
            obj = self.store.get(key)
            if obj is None:
                raise not_found(rt.plural, name, rt.group)
            if rt.kind == "Namespace":
                return self._delete_namespace(rt, obj)
            self.remove(rt, key)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": obj["metadata"]["uid"]},
        }

    def remove(self, rt: ResourceType, key: Key) -> None:
        obj = self.store.delete(key)
        if obj is not None and self.hooks:
            self.hooks.deleted(rt, obj)

    def _delete_namespace(self, rt: ResourceType, ns: dict[str, Any]) -> dict[str, Any]:
        name = ns["metadata"]["name"]
        ns.setdefault("status", {})["phase"] = "Terminating"
        ns["metadata"]["deletionTimestamp"] = now_rfc3339()
        self.store.put(self.key(rt, None, name), ns)
        for key in self.store.keys_in_namespace(name):
            self.remove(self.type_of(key), key)
        self.remove(rt, self.key(rt, None, name))
        return self._versioned(rt, ns)

    def type_of(self, key: Key) -> ResourceType:
        group, plural = key[0].split("/")
        found = next((rt for rt in self.registry.all() if rt.group == group and rt.plural == plural), None)
        assert found is not None, key
        return found

    def delete_collection(
        self, rt: ResourceType, namespace: str | None, query: dict[str, str]
    ) -> dict[str, Any]:
        with self.lock:
            items = self.select(
                rt, namespace, labels=query.get("labelSelector"), fields=query.get("fieldSelector")
            )
            for obj in items:
                self.remove(rt, self.key(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"]))
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": {}, "items": items}

    # -- for controllers ---------------------------------------------------------------------

    def put_internal(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """A controller's write: no admission checks beyond the hooks, no managedFields."""
        meta = obj["metadata"]
        key = self.key(rt, meta.get("namespace"), meta["name"])
        old = self.store.get(key)
        kept = (old or {}).get("metadata") or {}
        meta.setdefault("uid", kept.get("uid") or str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", kept.get("creationTimestamp") or now_rfc3339())
        meta.setdefault("generation", kept.get("generation") or 1)
        return self._commit(rt, key, self._versioned(rt, obj), old)

    def modify(
        self, rt: ResourceType, namespace: str | None, name: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any] | None:
        with self.lock:
            obj = self.find(rt, namespace, name)
            if obj is None:
                return None
            change(obj)
            return self.put_internal(rt, obj)

    def close(self) -> None:
        with self.lock:
            self.store.close()


def _decode(body: bytes, content_type: str) -> Any:
    if not body.strip():
        return None
    if content_type == "application/apply-patch+yaml" or content_type.endswith("yaml"):
        try:
            return yaml.safe_load(body)
        except yaml.YAMLError as e:
            raise bad_request(f"error decoding YAML: {e}") from None
    try:
        return json.loads(body)
    except ValueError as e:
        raise bad_request(f"error decoding JSON: {e}") from None
