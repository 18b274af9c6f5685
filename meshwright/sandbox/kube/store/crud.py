"""The write and read verbs of one cluster's API, with the real server's rules and status codes.

Order of a write, as on a real server: decode (field types, 400; 422 for patches), defaults and
admission (`Hooks.admit`), validation (422), validating admission webhooks (`Hooks.review`), store,
reactions (`Hooks.react`). Nothing that fails a step is stored.
"""

from __future__ import annotations

import copy
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from meshwright.sandbox import clock
from meshwright.sandbox.kube.registry import Registry, ResourceType
from meshwright.sandbox.kube.schema import defaults, validation
from meshwright.sandbox.kube.status import (
    KubeError,
    already_exists,
    bad_request,
    not_found,
)
from meshwright.sandbox.kube.store import decoding, writes
from meshwright.sandbox.kube.store import patch as p
from meshwright.sandbox.kube.store.objects import Key, ObjectStore
from meshwright.sandbox.kube.store.selectors import field_selector, label_selector

log = logging.getLogger(__name__)
RETURNS_DELETED = {"Service", "Pod"}  # their registries answer a DELETE with the object, not a Status
SERVER_SET = ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "managedFields", "selfLink")


class Hooks(Protocol):
    def admit(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None: ...

    def review(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None: ...

    def react(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None: ...

    def deleted(self, rt: ResourceType, obj: dict[str, Any], *, orphan: bool = False) -> None: ...


@dataclass(frozen=True)
class WriteOptions:
    """How a client asked for a write: who manages the fields, which subresource, dry run or not."""

    manager: str = ""
    subresource: str | None = None
    dry_run: bool = False
    force: bool = False
    strict: bool = False  # fieldValidation=Strict: unknown fields are an error, not pruned


class ClusterState:
    """Objects of one cluster and the verbs on them. All writes hold `lock`."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.lock = threading.RLock()
        self.registry = Registry()
        self.store = ObjectStore(directory)
        self.hooks: Hooks | None = None
        self._drop_undecodable()
        for crd in self.store.list("apiextensions.k8s.io/customresourcedefinitions"):
            self._register_stored_crd(crd)

    def _drop_undecodable(self) -> None:
        """Objects an older sandbox stored without checking their field types go, one log line each."""
        for key, obj in list(self.store.objects.items()):
            rt = self.type_of(key)
            if rt is None or rt.custom:
                continue
            problem = decoding.problem_of(rt, obj)
            if problem is not None:
                log.warning(
                    "cluster %s: stored %s %s/%s does not decode (%s): skipped",
                    self.name,
                    rt.kind,
                    key[1],
                    key[2],
                    problem.message(),
                )
                self.store.delete(key)

    def _register_stored_crd(self, crd: dict[str, Any]) -> None:
        try:
            self.registry.register_crd(crd)
        except (KeyError, TypeError, AttributeError):  # stored by an older sandbox that did not validate
            log.warning(
                "cluster %s: CRD %.200r cannot be served: skipped", self.name, crd["metadata"].get("name")
            )

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
        """One page of the matching objects (`limit`, `continue`), as of one resourceVersion."""
        start, limit = writes.page(query)
        with self.lock:
            items = self.select(
                rt, namespace, labels=query.get("labelSelector"), fields=query.get("fieldSelector")
            )
            rv = str(self.store.rv)
        meta: dict[str, Any] = {"resourceVersion": rv}
        page = items[start : start + limit] if limit else items[start:]
        left = len(items) - start - len(page)
        if left > 0:
            meta.update(
                **{"continue": writes.continue_token(rv, start + len(page)), "remainingItemCount": left}
            )
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta, "items": page}

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
        strict: bool = False,
    ) -> dict[str, Any]:
        obj = self._check_body(rt, namespace, body)
        writes.name_new(obj["metadata"])
        validation.check_metadata(rt, obj["metadata"])
        with self.lock:
            self._check_namespace(rt, namespace)
            key = self.key(rt, namespace, obj["metadata"]["name"])
            if self.store.get(key) is not None:
                raise already_exists(rt.plural, key[2], rt.group)
            self._stamp_new(rt, obj, namespace)
            if applied:
                paths = p.field_paths(p.ownable(body))
                obj["metadata"]["managedFields"] = [p.managed_entry(manager, "Apply", rt.api_version, paths)]
            else:
                p.record_update(obj, manager=manager or "unknown", changed=obj)
            return self._commit(rt, key, obj, None, dry_run=dry_run, strict=strict)

    def _stamp_new(self, rt: ResourceType, obj: dict[str, Any], namespace: str | None) -> None:
        """What the server sets on a new object, whatever the client sent in its place."""
        meta = obj["metadata"]
        for field in SERVER_SET:
            meta.pop(field, None)
        if rt.has_status:
            obj.pop("status", None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=clock.rfc3339(), generation=1)
        if rt.namespaced:
            meta["namespace"] = namespace

    def _check_body(self, rt: ResourceType, namespace: str | None, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request(
                f"the object provided is unrecognized (must be of type {rt.kind}): "
                f"json: cannot unmarshal {type(body).__name__} into Go value of type {rt.kind}"
            )
        if body.get("apiVersion") not in (None, rt.api_version):
            raise bad_request(
                f"the API version in the data ({body.get('apiVersion')}) does not match the expected API version ({rt.api_version})"
            )
        if body.get("kind") not in (None, rt.kind):
            raise bad_request(
                f"the kind in the data ({body.get('kind')}) does not match the expected kind ({rt.kind})"
            )
        obj = decoding.decoded(rt, copy.deepcopy(body))
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if rt.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        return obj

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
        check: bool = True,
        strict: bool = False,
    ) -> dict[str, Any]:
        if check and rt.custom:
            obj = decoding.against_schema(rt, obj, strict=strict)
        defaults.apply(rt, obj)
        if self.hooks:
            self.hooks.admit(rt, obj, old)
        writes.next_generation(obj, old)
        if check:
            validation.validate(rt, obj, old)
        if check and self.hooks:
            self.hooks.review(rt, obj, old)
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
        opts: WriteOptions = WriteOptions(),
    ) -> dict[str, Any]:
        obj = self._check_body(rt, namespace, body)
        writes.same_name(obj, name)
        with self.lock:
            current = self.get(rt, namespace, name)
            writes.fresh(rt, obj, current)
            changed = obj if opts.subresource is None else {"status": obj.get("status")}
            p.record_update(
                obj, manager=opts.manager or "unknown", changed=changed, subresource=opts.subresource
            )
            return self._replace(rt, namespace, current, obj, opts)

    def _replace(
        self,
        rt: ResourceType,
        namespace: str | None,
        current: dict[str, Any],
        new: dict[str, Any],
        opts: WriteOptions,
    ) -> dict[str, Any]:
        meta = new.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "namespace", "name", "generation"):
            if field in current["metadata"]:
                meta[field] = current["metadata"][field]
        meta.setdefault("managedFields", current["metadata"].get("managedFields", []))
        if opts.subresource == "status":
            result = {**copy.deepcopy(current), "status": new.get("status")}
            result["metadata"]["managedFields"] = meta["managedFields"]
        else:
            result = writes.keep_status(rt, new, current)
        key = self.key(rt, namespace, current["metadata"]["name"])
        return self._commit(rt, key, result, current, dry_run=opts.dry_run, strict=opts.strict)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: bytes,
        content_type: str,
        opts: WriteOptions = WriteOptions(),
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            current = self.find(rt, namespace, name)
            if content_type == "application/apply-patch+yaml":
                return self._apply(rt, namespace, name, body, current, opts)
            if current is None:
                raise not_found(rt.plural, name, rt.group)
            patch_body = decoding.patch_body(body, content_type)
            patched = decoding.patched_shape(rt, decoding.patched(rt, current, patch_body, content_type))
            writes.fresh(rt, patched, current)
            changed = patch_body if isinstance(patch_body, dict) else {}
            p.record_update(
                patched, manager=opts.manager or "unknown", changed=changed, subresource=opts.subresource
            )
            return 200, self._replace(rt, namespace, self._versioned(rt, current), patched, opts)

    def _apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: bytes,
        current: dict[str, Any] | None,
        opts: WriteOptions,
    ) -> tuple[int, dict[str, Any]]:
        applied = self._check_body(rt, namespace, decoding.patch_body(body, "application/apply-patch+yaml"))
        writes.same_name(applied, name)
        applied["metadata"]["name"] = name
        if current is None:
            if not opts.manager:
                raise bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
            created = self.create(
                rt,
                namespace,
                applied,
                manager=opts.manager,
                dry_run=opts.dry_run,
                applied=True,
                strict=opts.strict,
            )
            return 201, created
        result = decoding.patched_shape(
            rt, p.server_side_apply(current, applied, manager=opts.manager, force=opts.force)
        )
        return 200, self._replace(rt, namespace, self._versioned(rt, current), result, opts)

    def delete(
        self, rt: ResourceType, namespace: str | None, name: str, *, orphan: bool = False
    ) -> dict[str, Any]:
        with self.lock:
            key = self.key(rt, namespace, name)
            obj = self.store.get(key)
            if obj is None:
                raise not_found(rt.plural, name, rt.group)
            if rt.kind == "Namespace":
                return self._delete_namespace(rt, obj)
            self.remove(rt, key, orphan=orphan)
        if rt.kind in RETURNS_DELETED and not rt.custom:
            return self._versioned(rt, obj)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": obj["metadata"]["uid"]},
        }

    def remove(self, rt: ResourceType | None, key: Key, *, orphan: bool = False) -> None:
        """Delete and tell the controllers; an object whose type is gone just goes."""
        obj = self.store.delete(key)
        if obj is not None and rt is not None and self.hooks:
            self.hooks.deleted(rt, obj, orphan=orphan)

    def _delete_namespace(self, rt: ResourceType, ns: dict[str, Any]) -> dict[str, Any]:
        name = ns["metadata"]["name"]
        ns.setdefault("status", {})["phase"] = "Terminating"
        ns["metadata"]["deletionTimestamp"] = clock.rfc3339()
        self.store.put(self.key(rt, None, name), ns)
        for key in self.store.keys_in_namespace(name):
            self.remove(self.type_of(key), key)
        self.remove(rt, self.key(rt, None, name))
        return self._versioned(rt, ns)

    def type_of(self, key: Key) -> ResourceType | None:
        return next((rt for rt in self.registry.all() if rt.key == key[0]), None)

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
        meta.setdefault("creationTimestamp", kept.get("creationTimestamp") or clock.rfc3339())
        meta.setdefault("generation", kept.get("generation") or 1)
        return self._commit(rt, key, self._versioned(rt, obj), old, check=False)

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
