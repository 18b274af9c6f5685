"""HTTP face of one cluster's API: paths to verbs, bearer auth, RBAC, faults, watch streams, tables.

As on the real server, a request is authenticated (401), then authorized (403, `rbac.py` on the
attributes `requestinfo.py` reads off the URL), and only then routed: a user who may not list a
resource learns nothing about whether it exists.

Paths are percent-decoded before they are split, as the real API server (Go's `URL.Path`) does, so
`services/istiod%3A15014/proxy/...` and `services/istiod:15014/proxy/...` are the same request.
Verbs are dispatched by table: collection verbs, object verbs and subresources.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

from meshwright.sandbox import clock
from meshwright.sandbox.faults import Faults
from meshwright.sandbox.http import Request, Response
from meshwright.sandbox.kube import rbac
from meshwright.sandbox.kube.auth import ANONYMOUS, TokenAuthority
from meshwright.sandbox.kube.http import discovery, portforward, reviews, tables
from meshwright.sandbox.kube.http.requestinfo import request_info
from meshwright.sandbox.kube.http.requests import (
    NOT_FOUND,
    bearer_token,
    group_version,
    int_field,
    object_body,
    options,
    propagation,
    request_body,
)
from meshwright.sandbox.kube.http.watch import Watch, WatchFilter
from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.status import KubeError, bad_request, not_found, status_body
from meshwright.sandbox.kube.store import decoding
from meshwright.sandbox.kube.store.crud import ClusterState
from meshwright.sandbox.kube.store.policy import StoredPolicy
from meshwright.sandbox.settings import Latency

log = logging.getLogger(__name__)
PUBLIC = {"/version", "/healthz", "/livez", "/readyz"}
ServiceProxy = Callable[[str, str, str, Request], "Response | None"]
"""(namespace, "name[:port]", path, request) -> the backend's answer, or None when nothing backs it."""
PortForward = Callable[[str, str, int], "portforward.PortStream | None"]
"""(namespace, pod, port) -> a connection to what listens there, or None when nothing does."""


@dataclass(frozen=True)
class ResourcePath:
    """What a resource URL names: a type, maybe a namespace, maybe an object and its subresource."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    sub: str | None

    @property
    def subresource(self) -> str:
        return (self.sub or "").split("/")[0]


def refusal(status: int, message: str) -> Response:
    """The Status a real API server sends for what the HTTP layer refuses before routing."""
    if status == 413:
        return Response(
            413,
            status_body(
                413, f"Request entity too large: limit is {3 * 1024 * 1024}", reason="RequestEntityTooLarge"
            ),
        )
    return Response(status, KubeError(status, message).body())


# Pod subresources a client connects to with a WebSocket upgrade (a GET, so `get`): the API server
# also asks for `create` on them (KEP-4006 compound authorization, kubernetes/kubernetes#134577,
# feature gate AuthorizePodWebsocketUpgradeCreatePermission, on by default since 1.35).
CONNECT_SUBRESOURCES = ("exec", "attach", "portforward")


def _connect_create(attrs: rbac.Attributes) -> tuple[rbac.Attributes, ...]:
    connect = attrs.resource == "pods" and attrs.subresource in CONNECT_SUBRESOURCES and attrs.verb == "get"
    return (replace(attrs, verb="create"),) if connect else ()


class ClusterApi:
    def __init__(
        self,
        state: ClusterState,
        *,
        authority: TokenAuthority,
        faults: Faults,
        latency: Latency,
        proxy: ServiceProxy | None = None,
        forward: PortForward | None = None,
    ) -> None:
        self.state, self.authority, self.faults, self.latency = state, authority, faults, latency
        self.proxy, self.forward = proxy, forward
        self.watches = Watch(state)

    @property
    def stopping(self) -> bool:
        return self.watches.stopping

    @stopping.setter
    def stopping(self, value: bool) -> None:
        self.watches.stopping = value

    def handle(self, r: Request) -> Response:
        effect = self.faults.on_request(api="kube", method=r.method, path=r.path, cluster=self.state.name)
        if effect.delay or self.latency.request:
            time.sleep(effect.delay + self.latency.request)
        try:
            if effect.status is not None:
                raise KubeError(effect.status, effect.message or "injected fault")
            path = unquote(r.path)
            user = self._authenticated(r)
            self._authorize(user, request_info(r.method, path, r.query))
            return self._route(r, path.rstrip("/") or "/", user)
        except KubeError as e:
            return Response(e.code, e.body())
        except Exception as e:  # a bug of ours must still answer like an API server, not drop the line
            log.exception("%s %.200s failed in cluster %s", r.method, r.path, self.state.name)
            return Response(
                500, status_body(500, f"internal error: {type(e).__name__}", reason="InternalError")
            )

    def _authenticated(self, r: Request) -> rbac.User:
        """The user of valid credentials; anonymous only on the paths anonymous users may read."""
        auth = r.headers.get("authorization")
        if auth is None:
            if (r.path.rstrip("/") or "/") in PUBLIC:
                return ANONYMOUS
            raise KubeError(401, "Unauthorized")
        token = bearer_token(auth)
        user = self.authority.authenticate(token) if token is not None else None
        if user is None:
            raise KubeError(401, "Unauthorized")
        return user

    def _authorize(self, user: rbac.User, attrs: rbac.Attributes) -> None:
        for asked in (attrs, *_connect_create(attrs)):
            decision = self.decide(user, asked)
            if not decision.allowed:
                raise rbac.forbidden(asked, user, decision.reason)

    def decide(self, user: rbac.User, attrs: rbac.Attributes) -> rbac.Decision:
        """What RBAC says, reading only the bindings that name the user."""
        policy = StoredPolicy(
            self.state, where=lambda b: rbac.applies_to(user, b, b["metadata"].get("namespace", ""))
        )
        return rbac.authorize(attrs, user, policy)

    # -- routing -----------------------------------------------------------------------------

    def _route(self, r: Request, path: str, user: rbac.User) -> Response:
        if path == "/version":
            return Response(200, discovery.VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, b"ok", {"Content-Type": "text/plain"})
        if path in ("/api", "/apis"):
            return self._discovery(path, r.headers.get("accept", ""))
        if path == "/openapi/v2":
            body, content_type = discovery.openapi_v2(r.headers.get("accept", ""))
            return Response(200, body, {"Content-Type": content_type})
        if path.startswith("/openapi/"):
            return self._openapi(path)
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            found = discovery.api_group(self.state.registry, parts[1])
            if found is None:
                raise KubeError(404, NOT_FOUND)
            return Response(200, found)
        group, version, rest = group_version(parts)
        if not rest:
            return self._resource_list(group, version)
        return self._resource(r, self._resource_path(group, version, rest), user)

    def _resource_list(self, group: str, version: str) -> Response:
        served = self.state.registry.groups()
        if version not in served.get(group, []):
            raise KubeError(404, NOT_FOUND)
        return Response(200, discovery.resource_list(self.state.registry, group, version))

    def _discovery(self, path: str, accept: str) -> Response:
        reg = self.state.registry
        if discovery.wants_aggregated(accept):
            body = discovery.aggregated(reg, legacy=path == "/api")
            return Response(200, body, {"Content-Type": discovery.AGGREGATED})
        return Response(200, discovery.api_versions() if path == "/api" else discovery.api_group_list(reg))

    def _openapi(self, path: str) -> Response:
        reg = self.state.registry
        if path == "/openapi/v3":
            return Response(200, discovery.openapi_root(reg))
        parts = path.split("/")[3:]
        if parts[:1] == ["api"] and len(parts) == 2:
            return Response(200, discovery.openapi_group_version(reg, "", parts[1]))
        if parts[:1] == ["apis"] and len(parts) == 3:
            return Response(200, discovery.openapi_group_version(reg, parts[1], parts[2]))
        raise KubeError(404, NOT_FOUND)

    def _resource_path(self, group: str, version: str, rest: list[str]) -> ResourcePath:
        reg = self.state.registry
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            inner = reg.lookup(group, version, rest[2])
            if inner is not None and inner.namespaced:
                namespace, rest = rest[1], rest[2:]
        rt = reg.lookup(group, version, rest[0])
        if rt is None:
            raise KubeError(404, NOT_FOUND)
        name = rest[1] if len(rest) > 1 else None
        sub = "/".join(rest[2:]) or None
        if sub and sub.split("/")[0] not in (*rt.subresources, "finalize"):
            raise KubeError(404, NOT_FOUND)
        return ResourcePath(rt, namespace, name, sub)

    def _resource(self, r: Request, path: ResourcePath, user: rbac.User) -> Response:
        if path.name is None and r.method == "POST" and path.rt.kind in reviews.KINDS:
            return Response(201, self._review(path.rt, r, user))
        if path.name is None:
            verbs = COLLECTION_VERBS
        elif path.subresource in SUBRESOURCE_VERBS:
            return SUBRESOURCE_VERBS[path.subresource](self, r, path)
        else:
            verbs = OBJECT_VERBS
        verb = verbs.get(r.method)
        if verb is None:
            where = "a collection" if path.name is None else "here"
            raise KubeError(405, f"{r.method} is not supported on {where}")
        return verb(self, r, path)

    # -- collection verbs --------------------------------------------------------------------

    def _list(self, r: Request, path: ResourcePath) -> Response:
        q, accept = r.query, r.headers.get("accept", "")
        if q.get("watch") in ("true", "1"):
            return self.watches.respond(WatchFilter.of(path.rt, path.namespace, q, accept))
        listed = self.state.list(path.rt, path.namespace, q)
        if tables.wants_table(accept):
            version = listed["metadata"]["resourceVersion"]
            return Response(200, tables.table(path.rt, listed["items"], resource_version=version))
        return Response(200, listed)

    def _create(self, r: Request, path: ResourcePath) -> Response:
        opts = options(r)
        created = self.state.create(
            path.rt,
            path.namespace,
            request_body(r),
            manager=opts.manager,
            dry_run=opts.dry_run,
            strict=opts.strict,
        )
        return Response(201, created)

    def _delete_collection(self, r: Request, path: ResourcePath) -> Response:
        return Response(200, self.state.delete_collection(path.rt, path.namespace, r.query))

    # -- object verbs ------------------------------------------------------------------------

    def _get(self, r: Request, path: ResourcePath) -> Response:
        assert path.name is not None
        obj = self.state.get(path.rt, path.namespace, path.name)
        if tables.wants_table(r.headers.get("accept", "")):
            version = obj["metadata"]["resourceVersion"]
            return Response(200, tables.table(path.rt, [obj], resource_version=version))
        return Response(200, obj)

    def _update(self, r: Request, path: ResourcePath) -> Response:
        assert path.name is not None
        opts = options(r, path.sub)
        return Response(200, self.state.update(path.rt, path.namespace, path.name, request_body(r), opts))

    def _patch(self, r: Request, path: ResourcePath) -> Response:
        assert path.name is not None
        content_type = r.content_type or "application/json"
        opts = options(r, path.sub, apply=content_type == "application/apply-patch+yaml")
        code, obj = self.state.patch(path.rt, path.namespace, path.name, r.body, content_type, opts)
        return Response(code, obj)

    def _delete(self, r: Request, path: ResourcePath) -> Response:
        assert path.name is not None
        orphan = propagation(r) == "Orphan"
        return Response(200, self.state.delete(path.rt, path.namespace, path.name, orphan=orphan))

    # -- subresources ------------------------------------------------------------------------

    def _token_request(self, r: Request, path: ResourcePath) -> Response:
        if r.method != "POST" or path.rt.kind != "ServiceAccount" or path.name is None:
            raise KubeError(405, "only POST creates a token")
        sa = self.state.get(path.rt, path.namespace, path.name)
        spec = object_body(r).get("spec") or {}
        if not isinstance(spec, dict):
            raise bad_request("spec must be an object")
        seconds = int_field(spec, "expirationSeconds", 3600, kind="TokenRequest")
        if seconds < 600:
            raise KubeError(
                422, "spec.expirationSeconds: Invalid value: may not specify a duration less than 10 minutes"
            )
        expires = int(time.time()) + seconds
        token = self.authority.issue(
            namespace=path.namespace or "",
            service_account=path.name,
            uid=sa["metadata"]["uid"],
            expires=expires,
        )
        return Response(201, _token_request_body(path, spec, seconds, token, expires))

    def _review(self, rt: ResourceType, r: Request, user: rbac.User) -> dict[str, Any]:
        if rt.kind == "TokenReview":
            return reviews.token_review(object_body(r), self.authority)
        return reviews.access_review(rt, reviews.review_body(r), requester=user, decide=self.decide)

    def _scale(self, r: Request, path: ResourcePath) -> Response:
        assert path.name is not None
        obj = self.state.get(path.rt, path.namespace, path.name)
        if r.method in ("PUT", "PATCH"):
            # A PATCH applies to the Scale object, in any of the patch types the resource takes
            # (`kubectl scale` sends a merge patch); kube-apiserver's scale REST (registry/apps/
            # deployment/storage, scaleUpdatedObjectInfo) patches the Scale and writes its replicas.
            wanted = _patched_scale(path.rt, _scale_body(obj), r) if r.method == "PATCH" else object_body(r)
            spec = wanted.get("spec")
            replicas = spec.get("replicas") if isinstance(spec, dict) else None
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise bad_request("spec.replicas must be a non-negative integer")
            obj.setdefault("spec", {})["replicas"] = replicas
            obj = self.state.update(path.rt, path.namespace, path.name, obj, options(r))
        return Response(200, _scale_body(obj))

    def _service_proxy(self, r: Request, path: ResourcePath) -> Response:
        """`services/{name}[:{port}]/proxy/{path}`: the registered backend answers, or 503 as when nothing backs it."""
        if path.rt.kind != "Service" or path.name is None or path.namespace is None:
            raise KubeError(404, NOT_FOUND)
        target = path.name.split(":", 1)[1] if path.name.startswith(("http:", "https:")) else path.name
        service = target.split(":", 1)[0]
        if self.state.find(path.rt, path.namespace, service) is None:
            raise not_found("services", service)
        forwarded = "/" + (path.sub or "").partition("/")[2]
        answer = self._call_proxy(path.namespace, target, forwarded, r)
        if answer is None:
            raise KubeError(503, f'no endpoints available for service "{service}"')
        return answer

    def _port_forward(self, r: Request, path: ResourcePath) -> Response:
        """`pods/{name}/portforward`: a WebSocket whose channels reach the pod's ports (see portforward.py)."""
        if path.rt.kind != "Pod" or path.name is None or path.namespace is None or path.sub != "portforward":
            raise KubeError(404, NOT_FOUND)
        if r.method not in ("GET", "POST"):
            raise KubeError(405, f"{r.method} is not supported on here")
        pod = self.state.get(path.rt, path.namespace, path.name)
        namespace, forward = path.namespace, self.forward

        def connect(name: str, port: int) -> portforward.PortStream | None:
            return None if forward is None else forward(namespace, name, port)

        return portforward.upgrade(r, pod=pod, forward=connect)

    def _call_proxy(self, namespace: str, target: str, forwarded: str, r: Request) -> Response | None:
        if self.proxy is None:
            return None
        try:
            return self.proxy(namespace, target, forwarded, r)
        except Exception as e:  # a backend's failure is the service's, not the API server's
            log.exception("service proxy %s/%s%s failed", namespace, target, forwarded)
            raise KubeError(503, f"error trying to reach service: {type(e).__name__}") from None


COLLECTION_VERBS: dict[str, Callable[[ClusterApi, Request, ResourcePath], Response]] = {
    "GET": ClusterApi._list,
    "POST": ClusterApi._create,
    "DELETE": ClusterApi._delete_collection,
}
OBJECT_VERBS: dict[str, Callable[[ClusterApi, Request, ResourcePath], Response]] = {
    "GET": ClusterApi._get,
    "PUT": ClusterApi._update,
    "PATCH": ClusterApi._patch,
    "DELETE": ClusterApi._delete,
}
SUBRESOURCE_VERBS: dict[str, Callable[[ClusterApi, Request, ResourcePath], Response]] = {
    "token": ClusterApi._token_request,
    "scale": ClusterApi._scale,
    "proxy": ClusterApi._service_proxy,
    "portforward": ClusterApi._port_forward,
}


def _token_request_body(
    path: ResourcePath, spec: dict[str, Any], seconds: int, token: str, expires: int
) -> dict[str, Any]:
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": path.name, "namespace": path.namespace, "creationTimestamp": None},
        "spec": {
            "audiences": spec.get("audiences") or ["https://kubernetes.default.svc"],
            "expirationSeconds": seconds,
            "boundObjectRef": spec.get("boundObjectRef"),
        },
        "status": {"token": token, "expirationTimestamp": clock.rfc3339(expires)},
    }


def _patched_scale(rt: ResourceType, scale: dict[str, Any], r: Request) -> dict[str, Any]:
    content_type = r.content_type or "application/json"
    if content_type == "application/apply-patch+yaml":  # the applied fields over the current Scale
        content_type = "application/merge-patch+json"
    patched = decoding.patched(rt, scale, decoding.patch_body(r.body, content_type), content_type)
    if not isinstance(patched, dict):
        raise bad_request("the patched Scale must be an object")
    return patched


def _scale_body(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        },
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0)},
    }
