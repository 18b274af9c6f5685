"""HTTP face of one cluster's API: paths to verbs, bearer auth, faults, watch streams, tables."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from meshwright.sandbox.faults import Faults
from meshwright.sandbox.http import Request, Response
from meshwright.sandbox.kube import discovery, protobuf, tables
from meshwright.sandbox.kube.auth import TokenAuthority
from meshwright.sandbox.kube.crud import Cluster
from meshwright.sandbox.kube.objects import Gone
from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.selectors import field_selector, label_selector
from meshwright.sandbox.kube.status import KubeError, bad_request, status_body
from meshwright.sandbox.settings import Latency

log = logging.getLogger(__name__)
PUBLIC = {"/version", "/healthz", "/livez", "/readyz"}
MAX_WATCH = 1800.0


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    sub: str | None


class ClusterApi:
    def __init__(
        self, cluster: Cluster, *, authority: TokenAuthority, faults: Faults, latency: Latency
    ) -> None:
        self.cluster, self.authority, self.faults, self.latency = cluster, authority, faults, latency
        self.stopping = False

    def handle(self, r: Request) -> Response:
        effect = self.faults.on_request(api="kube", method=r.method, path=r.path, cluster=self.cluster.name)
        if effect.delay or self.latency.request:
            time.sleep(effect.delay + self.latency.request)
        try:
            if effect.status is not None:
                raise KubeError(effect.status, effect.message or "injected fault")
            if not self._authenticated(r):
                raise KubeError(401, "Unauthorized")
            return self._route(r)
        except KubeError as e:
            return Response(e.code, e.body())
        except Exception as e:  # a bug of ours must still answer like an API server, not drop the line
            log.exception("%s %s failed in cluster %s", r.method, r.path, self.cluster.name)
            return Response(
                500, status_body(500, f"internal error: {type(e).__name__}", reason="InternalError")
            )

    def _authenticated(self, r: Request) -> bool:
        """Valid credentials, or none at all on the paths anonymous users may read."""
        auth = r.headers.get("authorization")
        if auth is None:
            return (r.path.rstrip("/") or "/") in PUBLIC
        return auth.startswith("Bearer ") and self.authority.verify(auth[7:].strip()) is not None

    def _route(self, r: Request) -> Response:
        path, reg = r.path.rstrip("/") or "/", self.cluster.registry
        accept = r.headers.get("accept", "")
        if path == "/version":
            return Response(200, discovery.VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, b"ok", {"Content-Type": "text/plain"})
        if path in ("/api", "/apis"):
            return self._discovery(path, accept)
        if path.startswith("/openapi/"):
            return self._openapi(path)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        elif parts[0] == "apis" and len(parts) == 2:
            found = discovery.api_group(reg, parts[1])
            if found is None:
                raise KubeError(404, "the server could not find the requested resource")
            return Response(200, found)
        else:
            raise KubeError(404, "the server could not find the requested resource")
        if not rest:
            if group not in reg.groups() or version not in reg.groups()[group]:
                raise KubeError(404, "the server could not find the requested resource")
            return Response(200, discovery.resource_list(reg, group, version))
        return self._resource(r, self._target(group, version, rest), accept)

    def _discovery(self, path: str, accept: str) -> Response:
        reg = self.cluster.registry
        if discovery.wants_aggregated(accept):
            body = discovery.aggregated(reg, legacy=path == "/api")
            return Response(200, body, {"Content-Type": discovery.AGGREGATED})
        return Response(200, discovery.api_versions() if path == "/api" else discovery.api_group_list(reg))

    def _openapi(self, path: str) -> Response:
        reg = self.cluster.registry
        if path == "/openapi/v3":
            return Response(200, discovery.openapi_root(reg))
        parts = path.split("/")[3:]
        if parts[:1] == ["api"] and len(parts) == 2:
            return Response(200, discovery.openapi_group_version(reg, "", parts[1]))
        if parts[:1] == ["apis"] and len(parts) == 3:
            return Response(200, discovery.openapi_group_version(reg, parts[1], parts[2]))
        raise KubeError(404, "the server could not find the requested resource")

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        reg = self.cluster.registry
        namespace = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and (rt := reg.lookup(group, version, rest[2]))
            and rt.namespaced
        ):
            namespace, rest = rest[1], rest[2:]
        rt = reg.lookup(group, version, rest[0])
        if rt is None:
            raise KubeError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = "/".join(rest[2:]) or None
        if sub and sub.split("/")[0] not in (*rt.subresources, "finalize"):
            raise KubeError(404, "the server could not find the requested resource")
        return Target(rt, namespace, name, sub)

    # -- verbs -------------------------------------------------------------------------------

    def _resource(self, r: Request, t: Target, accept: str) -> Response:
        q, c = r.query, self.cluster
        manager = q.get("fieldManager") or _manager_from_agent(r.headers.get("user-agent", ""))
        dry_run = q.get("dryRun") == "All"
        if t.name is None:
            if r.method == "GET":
                if q.get("watch") in ("true", "1"):
                    return self._watch(t, q, as_table=tables.wants_table(accept))
                listed = c.list(t.rt, t.namespace, q)
                if tables.wants_table(accept):
                    return Response(
                        200,
                        tables.table(
                            t.rt, listed["items"], resource_version=listed["metadata"]["resourceVersion"]
                        ),
                    )
                return Response(200, listed)
            if r.method == "POST":
                if t.rt.kind == "TokenReview":
                    return Response(201, self._token_review(r.json()))
                if t.rt.kind in ("SubjectAccessReview", "SelfSubjectAccessReview"):
                    return Response(201, _access_review(t.rt, _lenient_json(r)))
                return Response(201, c.create(t.rt, t.namespace, _body(r), manager=manager, dry_run=dry_run))
            if r.method == "DELETE":
                return Response(200, c.delete_collection(t.rt, t.namespace, q))
            raise KubeError(405, f"{r.method} is not supported on a collection")
        if t.sub == "token":
            return self._token_request(t, r)
        if t.sub == "scale":
            return self._scale(t, r, manager)
        sub = "status" if t.sub == "status" else None
        if r.method == "GET":
            obj = c.get(t.rt, t.namespace, t.name)
            if tables.wants_table(accept):
                return Response(
                    200, tables.table(t.rt, [obj], resource_version=obj["metadata"]["resourceVersion"])
                )
            return Response(200, obj)
        if r.method == "PUT":
            return Response(
                200,
                c.update(
                    t.rt, t.namespace, t.name, _body(r), manager=manager, subresource=sub, dry_run=dry_run
                ),
            )
        if r.method == "PATCH":
            code, obj = c.patch(
                t.rt,
                t.namespace,
                t.name,
                r.body,
                r.content_type or "application/json",
                manager=q.get(
                    "fieldManager", "" if r.content_type == "application/apply-patch+yaml" else manager
                ),
                force=q.get("force") == "true",
                subresource=sub,
                dry_run=dry_run,
            )
            return Response(code, obj)
        if r.method == "DELETE":
            return Response(200, c.delete(t.rt, t.namespace, t.name))
        raise KubeError(405, f"{r.method} is not supported here")

    def _token_request(self, t: Target, r: Request) -> Response:
        if r.method != "POST" or t.rt.kind != "ServiceAccount" or t.name is None:
            raise KubeError(405, "only POST creates a token")
        sa = self.cluster.get(t.rt, t.namespace, t.name)
        spec = (_body(r) or {}).get("spec") or {}
        seconds = int(spec.get("expirationSeconds") or 3600)
        if seconds < 600:
            raise KubeError(
                422, "spec.expirationSeconds: Invalid value: may not specify a duration less than 10 minutes"
            )
        expires = int(time.time()) + seconds
        token = self.authority.issue(
            namespace=t.namespace or "", service_account=t.name, uid=sa["metadata"]["uid"], expires=expires
        )
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        body = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": t.name, "namespace": t.namespace, "creationTimestamp": None},
            "spec": {
                "audiences": spec.get("audiences") or ["https://kubernetes.default.svc"],
                "expirationSeconds": seconds,
                "boundObjectRef": spec.get("boundObjectRef"),
            },
            "status": {"token": token, "expirationTimestamp": stamp},
        }
        return Response(201, body)

    def _token_review(self, body: Any) -> dict[str, Any]:
        token = ((body or {}).get("spec") or {}).get("token", "")
        claims = self.authority.verify(token)
        status: dict[str, Any] = {"authenticated": claims is not None}
        if claims:
            status["user"] = {
                "username": claims["sub"],
                "groups": ["system:serviceaccounts", "system:authenticated"],
            }
        elif claims == {}:
            status["user"] = {
                "username": "sandbox-operator",
                "groups": ["system:masters", "system:authenticated"],
            }
        return {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {},
            "spec": (body or {}).get("spec"),
            "status": status,
        }

    def _scale(self, t: Target, r: Request, manager: str) -> Response:
        assert t.name is not None
        obj = self.cluster.get(t.rt, t.namespace, t.name)
        if r.method in ("PUT", "PATCH"):
            replicas = ((r.json() or {}).get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise bad_request("spec.replicas must be a non-negative integer")
            obj["spec"]["replicas"] = replicas
            obj = self.cluster.update(t.rt, t.namespace, t.name, obj, manager=manager)
        scale = {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: obj["metadata"][k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            },
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0)},
        }
        return Response(200, scale)

    # -- watch -------------------------------------------------------------------------------

    def _watch(self, t: Target, q: dict[str, str], *, as_table: bool = False) -> Response:
        match_l, match_f = label_selector(q.get("labelSelector")), field_selector(q.get("fieldSelector"))
        timeout = min(float(q.get("timeoutSeconds") or MAX_WATCH), MAX_WATCH)
        rv = q.get("resourceVersion") or "0"
        if not rv.isdigit():
            raise bad_request(f"invalid resourceVersion {rv!r}")
        return Response(
            200,
            None,
            {"Content-Type": "application/json"},
            stream=self._events(t, int(rv), timeout, match_l, match_f, as_table=as_table),
        )

    def _events(
        self, t: Target, rv: int, timeout: float, match_l: Any, match_f: Any, *, as_table: bool
    ) -> Iterator[bytes]:
        store, deadline = self.cluster.store, time.monotonic() + timeout

        def shaped(obj: dict[str, Any]) -> dict[str, Any]:
            # kubectl get -w asks for Table events; each carries one row.
            return (
                tables.table(t.rt, [obj], resource_version=obj["metadata"]["resourceVersion"])
                if as_table
                else obj
            )

        def wanted(key: tuple[str, str, str], obj: dict[str, Any]) -> bool:
            return (
                key[0] == t.rt.key
                and (t.namespace is None or key[1] == t.namespace)
                and match_l(obj)
                and match_f(obj)
            )

        if rv == 0:
            with self.cluster.lock:  # a consistent snapshot; sent after the lock is let go
                initial, rv = self.cluster.select(t.rt, t.namespace), store.rv
            for obj in initial:
                if match_l(obj) and match_f(obj):
                    yield _event("ADDED", shaped(obj))
        while not self.stopping and time.monotonic() < deadline:
            try:
                with store.changed:
                    events = list(store.events_since(rv))
                    if not events:
                        store.changed.wait(min(1.0, max(0.0, deadline - time.monotonic())))
                        continue
            except Gone:
                yield _event(
                    "ERROR",
                    status_body(410, f"too old resource version: {rv} ({store.rv})", reason="Expired"),
                )
                return
            for ev in events:
                rv = ev.rv
                if wanted(ev.key, ev.obj):
                    yield _event(
                        ev.type, shaped({**ev.obj, "apiVersion": t.rt.api_version, "kind": t.rt.kind})
                    )


def _lenient_json(r: Request) -> Any:
    try:
        return r.json()
    except ValueError:  # kubectl sends reviews as protobuf; the answer does not depend on them
        return None


def _access_review(rt: ResourceType, body: Any) -> dict[str, Any]:
    """RBAC is not enforced in the sandbox, and says so: everything is allowed."""
    status = {"allowed": True, "reason": "the meshwright sandbox does not enforce RBAC"}
    return {
        "kind": rt.kind,
        "apiVersion": rt.api_version,
        "metadata": {},
        "spec": (body or {}).get("spec") or {},
        "status": status,
    }


def _event(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _body(r: Request) -> Any:
    if r.content_type == "application/vnd.kubernetes.protobuf":
        return protobuf.decode(r.body)
    if r.content_type not in ("", "application/json", "application/yaml", "*/*"):
        raise KubeError(
            415,
            f"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {r.content_type})",
        )
    try:
        return yaml.safe_load(r.body) if r.content_type == "application/yaml" else r.json()
    except (ValueError, yaml.YAMLError) as e:
        raise bad_request(f"error decoding the body: {e}") from None


def _manager_from_agent(agent: str) -> str:
    """What the real API server records as manager when none is given: the user agent's program."""
    return agent.split("/")[0] or "unknown"
