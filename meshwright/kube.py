"""Talking to a cluster's Kubernetes API: the same code against GKE and the sandbox.

A client is built from an endpoint, a CA and a token source; the token is fetched on every
request through the client's refresh hook, so long runs keep a fresh Google token. Manifests are
applied with server-side apply (CRDs first, then wait until they are Established). Every call here
goes through `translate.kube_call`, so a refused or dropped connection is `Unreachable` (retried)
and an API error is meshwright's own, naming the cluster and the step.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import kubernetes.client
import kubernetes.stream
import kubernetes.watch
import urllib3.util
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.discovery import LazyDiscoverer
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError

from meshwright.errors import NotFound, NotReady, PermanentError, PermissionDenied
from meshwright.translate import kube_call

T = TypeVar("T")

FIELD_MANAGER = "meshwright"
CRD_KIND = "CustomResourceDefinition"


CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0  # what a request may wait for its answer, unless the caller bounds it otherwise
WATCH_MARGIN = 15.0  # a watch's read may wait this much longer than the server's own timeoutSeconds


class BoundedClient(kubernetes.client.ApiClient):
    """The kubernetes client with every request bounded.

    The client hands `_request_timeout=None` to urllib3 on every call that does not name one, which
    overrides any pool default and waits forever on a server that accepts and never answers. Here a
    request without its own bound gets (CONNECT_TIMEOUT, `read`); a watch, which may idle until the
    server's `timeoutSeconds`, gets a read bound just above that.
    """

    def __init__(self, configuration: kubernetes.client.Configuration, *, read: float) -> None:
        super().__init__(configuration)
        self.read_timeout = read

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        bound = _request_timeout or (CONNECT_TIMEOUT, _read_bound(url, self.read_timeout))
        return super().call_api(method, url, header_params, body, post_params, _request_timeout=bound)


def _read_bound(url: str, read: float) -> float:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    if query.get("watch", [""])[0].lower() not in ("true", "1"):
        return read
    server = query.get("timeoutSeconds", [""])[0]
    return (float(server) if server.isdigit() else 1800.0) + WATCH_MARGIN


class SharedClient(BoundedClient):
    """A client that several steps use at once and none closes (see Shared): `close` is a no-op."""

    def close(self) -> None:
        return None


class Shared:
    """One client per cluster endpoint and CA for the whole process, with the same credentials.

    A client made per call opened a connection, and a TLS handshake on both ends, per call: at 50
    clusters the remote secrets' 2,450 writes spent more time in handshakes than in requests. A
    shared client keeps its connections (urllib3 pools them per host, thread-safe) and every step
    of the process reuses them; a connection the server has closed is dropped by urllib3 before
    reuse. Its pool holds POOL connections per cluster, the steps a cluster may have in flight.
    """

    POOL = 32

    def __init__(self, token: Callable[[], str]) -> None:
        self._token, self._lock = token, threading.Lock()
        self._clients: dict[tuple[str, str], SharedClient] = {}

    def get(self, endpoint: str, ca_certificate: str) -> kubernetes.client.ApiClient:
        with self._lock:
            found = self._clients.get((endpoint, ca_certificate))
            if found is None:
                config = configuration(endpoint, ca_certificate, self._token)
                config.connection_pool_maxsize = self.POOL
                found = self._clients[(endpoint, ca_certificate)] = SharedClient(config, read=READ_TIMEOUT)
            return found


def connect(
    endpoint: str, ca_certificate: str, token: Callable[[], str], *, timeout: float = READ_TIMEOUT
) -> kubernetes.client.ApiClient:
    """An API client for `https://<endpoint>` trusting only the cluster's CA (base64 PEM), each of
    its requests bounded (`timeout` seconds to read an answer; see BoundedClient)."""
    return BoundedClient(configuration(endpoint, ca_certificate, token), read=timeout)


def configuration(
    endpoint: str, ca_certificate: str, token: Callable[[], str]
) -> kubernetes.client.Configuration:
    """How to reach `https://<endpoint>`: trusting only the cluster's CA, `token` on every request."""
    config = kubernetes.client.Configuration()
    config.host = f"https://{endpoint}"
    config.ssl_ca_cert = _ca_file(ca_certificate)
    config.api_key["authorization"] = "Bearer"  # the key must exist, or no header is sent

    def refresh(c: kubernetes.client.Configuration) -> None:
        c.api_key["authorization"] = f"Bearer {token()}"

    config.refresh_api_key_hook = refresh  # type: ignore[assignment]
    # urllib3 tries a request 4 times by default, a read that timed out too: one read bound per
    # call, so that retrying is the task's decision (Unresponsive), not a silent 4 x `timeout`.
    config.retries = urllib3.util.Retry(total=3, read=0, redirect=0)
    return config


def _ca_file(ca_certificate: str) -> str:
    # The CA is public; a file is what urllib3 wants. Same content, same path: no pile-up.
    pem = base64.b64decode(ca_certificate)
    path = Path(tempfile.gettempdir()) / f"meshwright-ca-{hashlib.sha256(pem).hexdigest()[:16]}.crt"
    if not path.exists():
        path.write_bytes(pem)
    return str(path)


def read_or_none(call: Callable[[], T]) -> T | None:
    """A read that answers None for 404, so callers can look before they act."""
    try:
        return call()
    except (ApiException, DynamicApiError) as e:
        if e.status == 404:
            return None
        raise


class _Discovery(LazyDiscoverer):
    """The dynamic client's discovery, kept in memory for the client's life: the library's default
    writes a JSON file per API server into $TMPDIR and reads it back, stale, in later runs."""

    def _write_cache(self) -> None:
        pass


# A path that never exists, so the discoverer never reads a file (and, above, never writes one).
_NO_CACHE_FILE = str(Path(tempfile.gettempdir()) / "meshwright-no-discovery-cache" / "none.json")


def dynamic(client: kubernetes.client.ApiClient) -> DynamicClient:
    return DynamicClient(client, cache_file=_NO_CACHE_FILE, discoverer=_Discovery)


def _dynamic(client: kubernetes.client.ApiClient, *, cluster: str, step: str) -> DynamicClient:
    with kube_call(cluster=cluster, step=step, what="API discovery", endpoint=_endpoint(client)):
        return dynamic(client)


def _endpoint(client: kubernetes.client.ApiClient) -> str:
    return str(client.configuration.host)


def _resource(dyn: DynamicClient, obj: dict[str, Any]) -> Any:
    try:
        return dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    except ResourceNotFoundError:
        dyn.resources.invalidate_cache()  # a CRD applied a moment ago
        return dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])


def apply(
    client: kubernetes.client.ApiClient,
    manifests: Iterable[dict[str, Any]],
    *,
    cluster: str,
    step: str,
    crd_timeout: float = 60.0,
) -> list[str]:
    """Server-side apply `manifests`; CRDs first, waited for until Established. Returns 'kind/name's."""
    items = list(manifests)
    crds = [m for m in items if m.get("kind") == CRD_KIND]
    rest = [m for m in items if m.get("kind") != CRD_KIND]
    dyn = _dynamic(client, cluster=cluster, step=step)
    applied = [_apply_one(dyn, m, cluster=cluster, step=step) for m in crds]
    for crd in crds:
        wait_established(client, crd["metadata"]["name"], cluster=cluster, step=step, timeout=crd_timeout)
    applied += [_apply_one(dyn, m, cluster=cluster, step=step) for m in rest]
    return applied


def _apply_one(dyn: DynamicClient, obj: dict[str, Any], *, cluster: str, step: str) -> str:
    what = f"{obj['kind']}/{obj['metadata']['name']}"
    try:
        with kube_call(cluster=cluster, step=step, what=what, endpoint=_endpoint(dyn.client)):
            dyn.server_side_apply(
                _resource(dyn, obj),
                body=obj,
                namespace=obj["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
    except ResourceNotFoundError as e:
        raise PermanentError(
            f"the API has no {obj['kind']} in {obj['apiVersion']}", cluster=cluster, step=step
        ) from e
    return f"{obj['kind']}/{obj['metadata']['name']}"


def wait_established(
    client: kubernetes.client.ApiClient, name: str, *, cluster: str, step: str, timeout: float
) -> None:
    api = kubernetes.client.ApiextensionsV1Api(client)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with kube_call(cluster=cluster, step=step, what=f"crd/{name}", endpoint=_endpoint(client)):
            crd = api.read_custom_resource_definition(name)
        conditions = (crd.status.conditions if crd.status else None) or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise NotReady(f"CRD {name} not Established after {timeout:.0f}s", cluster=cluster, step=step)


def wait_rollout(
    client: kubernetes.client.ApiClient,
    namespace: str,
    name: str,
    *,
    cluster: str,
    step: str,
    timeout: float = 300.0,
) -> None:
    """Return when the Deployment has all its replicas updated and available (a watch, no polling)."""
    with kube_call(cluster=cluster, step=step, what=f"deployment/{name}", endpoint=_endpoint(client)):
        if _watch_rollout(kubernetes.client.AppsV1Api(client), namespace, name, timeout=timeout):
            return
    raise NotReady(
        f"deployment {namespace}/{name} not rolled out after {timeout:.0f}s", cluster=cluster, step=step
    )


def _watch_rollout(apps: kubernetes.client.AppsV1Api, namespace: str, name: str, *, timeout: float) -> bool:
    return watch_until(apps.list_namespaced_deployment, namespace, name, _rolled_out, timeout=timeout)[0]


def watch_until(
    list_call: Callable[..., Any], namespace: str, name: str, done: Callable[[Any], bool], *, timeout: float
) -> tuple[bool, Any]:
    """Watch the object `name` (a namespaced `list_call`) until `done(object)` or `timeout`: whether it
    got there, and the object as last seen (None when no event came)."""
    deadline, watch, seen = time.monotonic() + timeout, kubernetes.watch.Watch(), None
    try:
        while time.monotonic() < deadline:
            for event in watch.stream(
                list_call,
                namespace,
                field_selector=f"metadata.name={name}",
                timeout_seconds=max(1, int(deadline - time.monotonic())),
            ):
                seen = event["object"]
                if done(seen):
                    return True, seen
    finally:
        watch.stop()
    return False, seen


def missing(
    client: kubernetes.client.ApiClient,
    manifests: Iterable[dict[str, Any]],
    *,
    cluster: str,
    step: str,
    namespace: str,
) -> list[str]:
    """'Kind/name' of each object of `manifests` that does not exist (namespaced objects without a
    namespace are in `namespace`, as helm puts them). One list per kind and namespace, not a get per
    object: a rerun checks istiod's and istio-base's ~45 objects in each of 50 clusters."""
    dyn, listed = _dynamic(client, cluster=cluster, step=step), _Listed()
    return [
        f"{obj['kind']}/{obj['metadata']['name']}"
        for obj in manifests
        if obj["metadata"]["name"]
        not in listed.names(dyn, obj, cluster=cluster, step=step, namespace=namespace)
    ]


class _Listed(dict[tuple[str, str, str | None], set[str]]):
    """The names of each kind (in a namespace) as one list call saw them."""

    def names(
        self, dyn: DynamicClient, obj: dict[str, Any], *, cluster: str, step: str, namespace: str
    ) -> set[str]:
        with kube_call(
            cluster=cluster, step=step, what=f"{obj['kind']} list", endpoint=_endpoint(dyn.client)
        ):
            resource = _resource(dyn, obj)
            where = (obj["metadata"].get("namespace") or namespace) if resource.namespaced else None
            key = (obj["apiVersion"], obj["kind"], where)
            if key not in self:
                found = dyn.get(resource, namespace=where, serialize=False)
                self[key] = {i["metadata"]["name"] for i in json.loads(found.data).get("items") or []}
        return self[key]


# The client's call for each cluster-scope collection an informer lists and watches.
_COLLECTIONS = {
    ("", "namespaces"): (kubernetes.client.CoreV1Api, "list_namespace"),
    ("", "services"): (kubernetes.client.CoreV1Api, "list_service_for_all_namespaces"),
    ("discovery.k8s.io", "endpointslices"): (
        kubernetes.client.DiscoveryV1Api,
        "list_endpoint_slice_for_all_namespaces",
    ),
    ("", "pods"): (kubernetes.client.CoreV1Api, "list_pod_for_all_namespaces"),
    ("", "nodes"): (kubernetes.client.CoreV1Api, "list_node"),
}


def list_or_watch(
    client: kubernetes.client.ApiClient, group: str, resource: str, verb: str, *, cluster: str, step: str
) -> None:
    """One list (limit 1) or watch of a cluster-scope collection, as an informer starts; raises
    meshwright's error (PermissionDenied for a 401 or 403). A watch is authorized before anything
    streams, so its answer's status is all that is read."""
    api, method = _COLLECTIONS[(group, resource)]
    options = {"limit": 1} if verb == "list" else {"watch": True, "timeout_seconds": 1}
    with kube_call(cluster=cluster, step=step, what=f"{verb} {resource}", endpoint=_endpoint(client)):
        response = getattr(api(client), method)(**options, _preload_content=False)
        response.close()  # not back to the pool: a watch's stream is still open on that connection


def list_and_watch(
    client: kubernetes.client.ApiClient, collections: Iterable[tuple[str, str]], *, cluster: str, step: str
) -> None:
    """List and watch each (group, resource) at cluster scope, as informers start. A 403 comes out
    as PermissionDenied naming what was refused (`cannot list endpointslices at cluster scope: …`);
    a 401 (the token itself rejected) as it is."""
    for group, resource in collections:
        for verb in ("list", "watch"):
            try:
                list_or_watch(client, group, resource, verb, cluster=cluster, step=step)
            except PermissionDenied as e:
                if "HTTP 401" in e.message:
                    raise
                refused = f"cannot {verb} {resource} at cluster scope: {e.message}"
                raise PermissionDenied(refused, cluster=cluster, step=step) from e


def forward_get(
    client: kubernetes.client.ApiClient,
    namespace: str,
    pod: str,
    port: int,
    path: str,
    *,
    cluster: str,
    step: str,
    what: str = "",
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """GET `path` on a pod's `port` through the API server's port-forward (`pods/portforward` over
    WebSocket, v4.channel.k8s.io), as `istioctl` reaches istiod (istio/istio pkg/kube/client.go):
    the pod sees a local caller. Returns the answer's status and body."""
    # kubernetes.stream swaps the client's call_api while it dials: on a client of its own, since
    # a shared one (Shared) serves other steps at the same moment.
    own = BoundedClient(client.configuration, read=timeout)
    core = kubernetes.client.CoreV1Api(own)
    what = what or f"port-forward to pod/{pod}:{port} in {namespace}"
    with (
        contextlib.closing(own),
        kube_call(cluster=cluster, step=step, what=what, endpoint=_endpoint(client)),
    ):
        forward = kubernetes.stream.portforward(
            core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port)
        )
        try:
            conn = http.client.HTTPConnection("localhost", timeout=timeout)
            conn.sock = forward.socket(port)  # HTTP/1.1 over the forwarded stream
            conn.sock.settimeout(timeout)
            conn.request("GET", path)
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            forward.close()


def load_balancer_addresses(service: Any) -> list[str]:
    """A LoadBalancer Service's addresses (IPs or hostnames), as the kubernetes client reads it."""
    status = getattr(service, "status", None)
    ingress = (status.load_balancer.ingress if status and status.load_balancer else None) or []
    return [str(i.ip or i.hostname) for i in ingress if i.ip or i.hostname]


def _rolled_out(dep: Any) -> bool:
    """As `kubectl rollout status` decides (kubectl pkg/polymorphichelpers/rollout_status.go): the
    controller saw this generation, every replica is updated, no old replica is left (during a
    rolling update the old pods still count as available), and the updated ones are available."""
    status, want = dep.status, dep.spec.replicas if dep.spec.replicas is not None else 1
    if status is None or (status.observed_generation or 0) < (dep.metadata.generation or 0):
        return False
    updated = status.updated_replicas or 0
    return (
        updated >= want and (status.replicas or 0) <= updated and (status.available_replicas or 0) >= updated
    )


def delete(
    client: kubernetes.client.ApiClient, manifests: Iterable[dict[str, Any]], *, cluster: str, step: str
) -> list[str]:
    """Delete what `apply` applied, in reverse order; what is already gone counts as deleted."""
    dyn, deleted = _dynamic(client, cluster=cluster, step=step), []
    for obj in reversed(list(manifests)):
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        with (
            contextlib.suppress(NotFound, ResourceNotFoundError),
            kube_call(cluster=cluster, step=step, what=what, endpoint=_endpoint(client)),
        ):
            dyn.delete(
                _resource(dyn, obj), name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace")
            )
            deleted.append(what)
    return deleted
