"""The API servers of all sandbox clusters: ports, CAs, start on RUNNING, stop on delete.

Endpoints and CAs are allocated here, once per cluster, and persisted: a cluster keeps its port
and its CA across sandbox restarts.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import ipaddress
import logging
import re
import secrets
import shutil
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshwright.pki import KeyPair, new_root_ca, new_server_cert
from meshwright.sandbox import dotted, store
from meshwright.sandbox.faults import Faults
from meshwright.sandbox.http import KUBE_MAX_BODY, Request, Response, Server, free_port
from meshwright.sandbox.kube.auth import TokenAuthority
from meshwright.sandbox.kube.controllers import bootstrap, nodes
from meshwright.sandbox.kube.controllers.controllers import Controllers
from meshwright.sandbox.kube.controllers.pods import Run
from meshwright.sandbox.kube.http.api import ClusterApi, PortForward, ServiceProxy, refusal
from meshwright.sandbox.kube.http.portforward import PortStream
from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.store.crud import ClusterState
from meshwright.sandbox.settings import Latency, Layout

log = logging.getLogger(__name__)
SANDBOX_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def sandbox_id(value: Any) -> str:
    """A cluster id the sandbox made; anything else never becomes part of a path."""
    if not isinstance(value, str) or not SANDBOX_ID.match(value):
        raise ValueError(f"not a sandbox cluster id: {str(value)[:80]!r}")
    return value


def _bootstrap_or_resync(state: ClusterState, controllers: Controllers) -> None:
    """A new cluster gets its system namespaces; a restarted one redoes what its timers had pending."""
    if state.store.get(("/namespaces", "", "default")) is None:
        for ns in bootstrap.SYSTEM_NAMESPACES:
            state.put_internal(controllers.rt("v1", "Namespace"), {"metadata": {"name": ns}})
    else:
        controllers.resync()
    rbac = "rbac.authorization.k8s.io/v1"
    _ensure(state, controllers.rt(rbac, "ClusterRole"), bootstrap.cluster_roles())
    _ensure(state, controllers.rt(rbac, "ClusterRoleBinding"), bootstrap.cluster_role_bindings())


def _node_subnet(cid: str) -> int:
    """A stable per-cluster index for its nodes' addresses."""
    return int(hashlib.sha256(cid.encode()).hexdigest()[:8], 16)


def _ensure(state: ClusterState, rt: ResourceType, wanted: list[dict[str, Any]]) -> None:
    """Cluster-scoped objects every cluster has (clusters made before they were modelled get them too)."""
    with state.lock:
        for obj in wanted:
            if state.find(rt, None, obj["metadata"]["name"]) is None:
                state.put_internal(rt, obj)


def _issuer(cluster: dict[str, Any]) -> str:
    """GKE's service-account token issuer for the cluster (a string in tokens, never a path)."""
    where = f"projects/{cluster['_project']}/locations/{cluster['location']}/clusters/{cluster['name']}"
    return f"https://container.googleapis.com/v1/{where}"


def operator_token(layout: Layout) -> str:
    """The sandbox operator's bearer token (valid on every cluster of this sandbox)."""
    path = layout.operator_token
    if not path.exists():
        store.write_secret(path, secrets.token_urlsafe(32).encode())
    return path.read_text().strip()


@dataclass
class Running:
    """One cluster's API: its objects (`cluster`, read by the data plane), controllers and HTTPS server."""

    name: str
    cluster: ClusterState
    api: ClusterApi
    controllers: Controllers
    server: Server

    def stop(self) -> None:
        self.api.stopping = True
        self.server.stop()
        self.cluster.close()


PodAdmissionHook = Callable[[str, dict[str, Any]], "str | None"]
"""(cluster_id, pod about to be created, mutable) -> None when admitted, else the refusal message."""
ConfigReviewHook = Callable[
    [str, str, str, dict[str, Any], "dict[str, Any] | None"], "tuple[int, str] | None"
]
"""(cluster_id, group, plural, object, old) -> None when the validating webhooks admit the write, else
(403, denial) or (500, why the webhook could not be called)."""

PodRunHook = Callable[[str, dict[str, Any]], "Run | None"]
"""(cluster_id, a bare pod just created) -> how to run its container (called later, off the cluster's
lock, with the started pod), or None when the sandbox cannot run it."""

LoadBalancerHook = Callable[[str, dict[str, Any], bool], None]
"""(cluster_id, LoadBalancer Service, present) -> None: its load balancer is up (or changed), or gone.
Called with the cluster's lock held: it must not wait for the world's lock."""


def loopback_pool(layout: Layout) -> ipaddress.IPv4Network:
    """This sandbox's /16 of 127.0.0.0/8 for load-balancer addresses (two sandboxes on one host differ)."""
    second = 1 + int(hashlib.sha256(str(layout.root).encode()).hexdigest(), 16) % 254
    return ipaddress.IPv4Network(f"127.{second}.0.0/16")


ProxyBackend = Callable[[str, str, str, str, Request], "Response | None"]
"""(cluster_id, namespace, "name[:port]", path, request) -> an answer, or None when nothing backs the service."""
ForwardBackend = Callable[[str, str, str, int], "PortStream | None"]
"""(cluster_id, namespace, pod, port) -> a connection to what listens on the pod's port, or None when nothing does."""


class Fleet:
    """Every cluster's API server, keyed by the id the sandbox made for the cluster (never a user's string).

    `service_proxy` is where an emulated workload plugs in: the API's `services/{name}:{port}/proxy/...`
    calls it, and answers 503 "no endpoints available" while it is None or returns None.
    `port_forward` is the same for `pods/{name}/portforward`: while it is None or returns None, the
    forward fails on the error channel as it does when nothing listens on the pod's port.
    """

    def __init__(self, layout: Layout, *, latency: Latency, faults: Faults, lock: threading.RLock) -> None:
        self.layout, self.latency, self.faults, self.lock = layout, latency, faults, lock
        self.token = operator_token(layout)
        self.running_apis: dict[str, Running] = {}
        self.service_proxy: ProxyBackend | None = None
        self.port_forward: ForwardBackend | None = None
        self.pod_admission: PodAdmissionHook | None = None
        self.pod_run: PodRunHook | None = None
        self.config_review: ConfigReviewHook | None = None
        self.load_balancers: LoadBalancerHook | None = None
        self.lb_pool = loopback_pool(layout)
        self._lb_reserved: set[str] = set()
        self._lb_lock = threading.Lock()
        self._ticker_stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="kube-controllers", daemon=True)
        self._ticker.start()
        self._starting: dict[str, threading.Lock] = {}  # per cluster: prepare, start, delete
        self._starting_lock = threading.Lock()
        self._gone: set[str] = set()  # deleted clusters a warm start must not bring back

    def _tick(self) -> None:
        while not self._ticker_stop.wait(0.05):
            for running in list(self.running_apis.values()):
                running.controllers.run_due()

    # -- ClusterHooks ------------------------------------------------------------------------

    def prepare(self, cluster_id: str) -> tuple[int, str]:
        cid = sandbox_id(cluster_id)
        with self._one(cid):
            return self._port(cid), base64.b64encode(self._ca(cid).cert_pem).decode()

    def warm(self, cluster: dict[str, Any]) -> None:
        """Start a new cluster's API while GKE creates it, in a thread of its own: GKE's control plane
        is up before the cluster is RUNNING (its endpoint is published then), and the sandbox's cost of
        starting one (a CA, a listener, the bootstrap objects: 50-190 ms, measured at 20 clusters) is
        then paid inside the create's simulated time, not added to it. Fifty clusters due at once were
        otherwise started one after another under the world's lock when they came due, and the last
        was RUNNING seconds late."""
        threading.Thread(target=self._warm, args=(dict(cluster),), name="warm-cluster", daemon=True).start()

    def _warm(self, cluster: dict[str, Any]) -> None:
        try:
            self.prepare(cluster["id"])
            self.running(cluster)
        except Exception:  # RUNNING starts it again, and says why if it still cannot
            log.exception("cluster %.80s could not start ahead of RUNNING", cluster.get("name"))

    def _one(self, cid: str) -> threading.Lock:
        """The lock that makes one cluster's prepare, start and delete happen one at a time."""
        with self._starting_lock:
            return self._starting.setdefault(cid, threading.Lock())

    def _port(self, cluster_id: str) -> int:
        """The cluster's API port: chosen once, then the same across restarts."""
        meta_path = self.layout.kube_dir(cluster_id) / "meta.json"
        meta = store.read_json(meta_path, {})
        if "port" not in meta:
            meta["port"] = free_port()
            store.write_json(meta_path, meta)
        return int(meta["port"])

    def _ca(self, cluster_id: str) -> KeyPair:
        directory = self.layout.ca_dir(cluster_id)
        cert, key = directory / "ca.crt", directory / "ca.key"
        if not cert.exists():
            pair = new_root_ca(
                common_name=f"sandbox {cluster_id}", organization="meshwright sandbox", key="ec"
            )
            store.write_secret(key, pair.key_pem)
            store.write_atomic(cert, pair.cert_pem)
        if not (directory / "token.key").exists():
            store.write_secret(directory / "token.key", secrets.token_bytes(32))
        return KeyPair(cert.read_bytes(), key.read_bytes())

    def running(self, cluster: dict[str, Any]) -> None:
        """Serve the cluster's API (once): its objects, controllers and HTTPS listener."""
        cid = sandbox_id(cluster["id"])
        with self._one(cid):
            if cid not in self.running_apis and cid not in self._gone:
                self._start(cid, cluster)

    def _start(self, cid: str, cluster: dict[str, Any]) -> None:
        port, ca = self._port(cid), self._ca(cid)
        state = ClusterState(cluster["name"], self.layout.kube_dir(cid) / "objects")
        authority = self._authority(cid, cluster, state)
        controllers = self._controllers(state, authority, ca, cluster)
        api = ClusterApi(
            state,
            authority=authority,
            faults=self.faults,
            latency=self.latency,
            proxy=self._proxy_for(cid),
            forward=self._forward_for(cid),
        )
        server = self._serve(port, api, ca, cid)
        self.running_apis[cid] = Running(cluster["name"], state, api, controllers, server)
        _bootstrap_or_resync(state, controllers)
        _ensure(state, controllers.rt("v1", "Node"), nodes.for_cluster(cluster, index=_node_subnet(cid)))

    def _authority(self, cid: str, cluster: dict[str, Any], state: ClusterState) -> TokenAuthority:
        """The cluster's token authority, which looks up a token's Secret and ServiceAccount in its
        own objects, as kube-apiserver's service-account authenticator does (`--service-account-lookup`)."""
        key = (self.layout.ca_dir(cid) / "token.key").read_bytes()

        def lookup(type_key: str, namespace: str, name: str) -> dict[str, Any] | None:
            return state.store.get((type_key, namespace, name))

        return TokenAuthority(issuer=_issuer(cluster), key=key, operator_token=self.token, lookup=lookup)

    def _controllers(
        self, state: ClusterState, authority: TokenAuthority, ca: KeyPair, cluster: dict[str, Any]
    ) -> Controllers:
        return Controllers(
            state,
            latency=self.latency,
            authority=authority,
            ca_pem=ca.cert_pem.decode(),
            pod_cidr=cluster["clusterIpv4Cidr"],
            services_cidr=cluster["servicesIpv4Cidr"],
            lb_address=self._lb_address,
            lb_changed=self._balancers_for(sandbox_id(cluster["id"])),
            admit_pod=self._admission_for(sandbox_id(cluster["id"])),
            review_config=self._review_for(sandbox_id(cluster["id"])),
            run_pod=self._runner_for(sandbox_id(cluster["id"])),
        )

    def _admission_for(self, cid: str) -> Callable[[dict[str, Any]], str | None]:
        """The cluster's view of `pod_admission`, read at each pod creation."""

        def admit(pod: dict[str, Any]) -> str | None:
            hook = self.pod_admission
            return None if hook is None else hook(cid, pod)

        return admit

    def _runner_for(self, cid: str) -> Callable[[dict[str, Any]], Run | None]:
        """The cluster's view of `pod_run`, read when a pod is created."""

        def run(pod: dict[str, Any]) -> Run | None:
            hook = self.pod_run
            return None if hook is None else hook(cid, pod)

        return run

    def _balancers_for(self, cid: str) -> Callable[[dict[str, Any], bool], None]:
        """The cluster's view of `load_balancers`, read at each change."""

        def changed(svc: dict[str, Any], present: bool) -> None:
            hook = self.load_balancers
            if hook is not None:
                hook(cid, copy.deepcopy(svc), present)  # the store changes it after the call

        return changed

    def _review_for(
        self, cid: str
    ) -> Callable[[str, str, dict[str, Any], dict[str, Any] | None], tuple[int, str] | None]:
        """The cluster's view of `config_review`, read at each write."""

        def review(
            group: str, plural: str, obj: dict[str, Any], old: dict[str, Any] | None
        ) -> tuple[int, str] | None:
            hook = self.config_review
            return None if hook is None else hook(cid, group, plural, obj, old)

        return review

    def _lb_address(self) -> str:
        """A load-balancer address on loopback, distinct across the fleet (never one that leaves the machine)."""
        with self._lb_lock:
            taken = self._lb_reserved | {
                str(i.get("ip"))
                for running in list(self.running_apis.values())
                for svc in running.cluster.store.list("/services")
                for i in (dotted.get(svc, "status.loadBalancer.ingress") or [])
            }
            ip = next(
                str(a) for a in self.lb_pool.hosts() if a.packed[3] not in (0, 255) and str(a) not in taken
            )
            self._lb_reserved.add(ip)
            return ip

    def _proxy_for(self, cid: str) -> ServiceProxy:
        """The cluster's view of `service_proxy`, read at each call so a backend may come and go."""

        def call(namespace: str, service: str, path: str, r: Request) -> Response | None:
            backend = self.service_proxy
            return None if backend is None else backend(cid, namespace, service, path, r)

        return call

    def _forward_for(self, cid: str) -> PortForward:
        """The cluster's view of `port_forward`, read at each connection."""

        def connect(namespace: str, pod: str, port: int) -> PortStream | None:
            backend = self.port_forward
            return None if backend is None else backend(cid, namespace, pod, port)

        return connect

    def _serve(self, port: int, api: ClusterApi, ca: KeyPair, cid: str) -> Server:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf = self._server_cert(ca, cid)
        with tempfile.TemporaryDirectory() as tmp:
            chain, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
            store.write_atomic(chain, leaf.cert_pem + ca.cert_pem)
            store.write_secret(key, leaf.key_pem)
            tls.load_cert_chain(chain, key)
        server = Server(
            port, api.handle, name="meshwright-sandbox-kube", tls=tls, max_body=KUBE_MAX_BODY, refusal=refusal
        )
        return server.start()

    def _server_cert(self, ca: KeyPair, cid: str) -> KeyPair:
        directory = self.layout.ca_dir(cid)
        cert, key = directory / "server.crt", directory / "server.key"
        if not cert.exists():
            pair = new_server_cert(ca, hosts=["127.0.0.1", "localhost", "kubernetes.default.svc"])
            store.write_secret(key, pair.key_pem)
            store.write_atomic(cert, pair.cert_pem)
        return KeyPair(cert.read_bytes(), key.read_bytes())

    def deleted(self, cluster: dict[str, Any]) -> None:
        cid = sandbox_id(cluster["id"])
        with self._one(cid):
            self._gone.add(cid)
            running = self.running_apis.pop(cid, None)
            if running:
                running.stop()
            for directory in (self.layout.kube_dir(cid), self.layout.ca_dir(cid)):
                shutil.rmtree(directory, ignore_errors=True)

    # -- world -------------------------------------------------------------------------------

    def resume(self, clusters: Iterable[dict[str, Any]]) -> None:
        """Serve every running cluster again; one that cannot start is logged and left, the others start."""
        for cluster in clusters:
            try:
                self.running(cluster)
            except Exception:
                log.exception(
                    "cluster %.80s (id %.40s) could not start", cluster.get("name"), cluster.get("id")
                )

    def endpoint(self, cluster_id: str) -> str | None:
        """The URL of one cluster's API while it runs."""
        running = self.running_apis.get(cluster_id)
        return f"https://127.0.0.1:{running.server.port}" if running else None

    def close(self) -> None:
        self._ticker_stop.set()
        for running in self.running_apis.values():
            with contextlib.suppress(Exception):
                running.stop()
        self.running_apis.clear()
