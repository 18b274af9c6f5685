"""The sandbox's data plane at work: snapshots of the world, the injector hook, traffic, listeners.

- `DataPlane.admit_pod(cluster_id, pod)` is what the Kubernetes emulator calls when it creates a
  pod (the injector webhook; see `injection`); `review_config` when it writes Istio config (the
  validation webhook; see `validation`). It reads the clusters' object stores only, never the
  world lock and never the network, because the emulator calls it with a cluster's lock held.
- `DataPlane.run_pod(cluster_id, pod)` runs a bare pod's `curl` (see `curl`): its request leaves
  from that pod (`Traffic.from_pod`), so a pod without sidecar meets PeerAuthentication as plaintext.
- `Traffic.request(address, port, path, host)` is a request reaching an ingress gateway: routed
  by `ingress` and `dataplane`, answered by `apps`, hop by hop, with Envoy's 503 (after
  `FAILURE_DELAY`) where a connection would fail. Why each failure happened is logged (the
  sandbox's own diagnosis).
- A poller keeps one HTTP listener on every port of every LoadBalancer Service whose address is a
  loopback address (127.x.y.z), within the caps of `gateway`. Port 80 needs root; when a bind is
  refused, one clear log line.

The world is read through `Sources` (clusters with their nodes, API URL and object store; the VPC
firewall rules), which `world_view` builds from a `World` without importing the GCP emulator.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from meshwright.sandbox import dotted
from meshwright.sandbox.mesh import (
    apps,
    curl,
    dataplane,
    gateway,
    ingress,
    injection,
    locality,
    peerauth,
    probe,
    validation,
)
from meshwright.sandbox.mesh import istiod as istiod_model
from meshwright.sandbox.mesh.dataplane import Cluster, Endpoint, Failure, Mesh
from meshwright.sandbox.mesh.reachability import Node
from meshwright.sandbox.mesh.revisions import ControlPlane

log = logging.getLogger(__name__)
FAILURE_DELAY = 0.01  # seconds before a failed connection answers (a real one waits for a timeout)
SNAPSHOT_SECONDS = 0.3  # how stale the routing may be (istiod pushes are not instant either)
POLL_SECONDS = 0.25
MAX_HOPS = 8
RESET = b"upstream connect error or disconnect/reset before headers. reset reason: connection termination"
READ_TYPES: tuple[tuple[str, str | None], ...] = (
    ("/pods", None),
    ("/services", None),
    ("/namespaces", None),
    ("/endpoints", None),
    (dataplane.SLICES, dataplane.ISTIO_NS),
    ("/secrets", dataplane.ISTIO_NS),
    ("apps/deployments", dataplane.ISTIO_NS),
    (dataplane.GATEWAYS, None),
    (dataplane.VIRTUAL_SERVICES, None),
    (peerauth.PEER_AUTHENTICATIONS, None),
    (locality.DESTINATION_RULES, None),
    (locality.NODES, None),
    (injection.WEBHOOKS_TYPE, None),
    (validation.WEBHOOKS_TYPE, None),
)


class Store(Protocol):
    def list(self, type_key: str, namespace: str | None = None) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Source:
    id: str  # the fleet's id of the cluster
    node: Node
    endpoint: str | None
    store: Store


class Sources(Protocol):
    def clusters(self, *, locked: bool = True) -> list[Source]:
        """`locked=False`: read without the world's lock (the admission hook may not wait for it)."""
        ...

    def firewalls(self) -> list[dict[str, Any]]: ...


def world_view(world: Any) -> Sources:
    """Sources over a sandbox World (GKE records, the fleet's stores, Compute's firewall rules)."""

    class View:
        def clusters(self, *, locked: bool = True) -> list[Source]:
            records = _records(world, locked=locked)
            found = []
            for c in records:
                running = world.fleet.running_apis.get(c.id)
                if running is None or c.status == "PROVISIONING":  # started ahead (Fleet.warm), not up yet
                    continue
                view = c.view
                node = Node(
                    cluster=c.name,
                    project=c.project,
                    vpc=str(view.get("network", "default")).rsplit("/", 1)[-1],
                    pod_cidr=str(view.get("clusterIpv4Cidr", "")),
                    tags=tuple(dotted.get(view, "nodeConfig.tags", []) or []),
                )
                found.append(Source(c.id, node, world.fleet.endpoint(c.id), running.cluster.store))
            return found

        def firewalls(self) -> list[dict[str, Any]]:
            with world.lock:
                return [{**r.view, "_project": r.project} for r in world.compute.firewalls.values()]

    return View()


def _records(world: Any, *, locked: bool) -> list[Any]:
    if locked:
        with world.lock:
            return list(world.gke.serving())
    for _ in range(5):  # a lock-free read may meet the dict mid-change: read again
        try:
            return list(world.gke.serving())
        except RuntimeError:
            continue
    return []


@dataclass(frozen=True)
class _Read:
    """One cluster's lists as `DataPlane._objects` last read them."""

    rv: int  # the store's resourceVersion before they were read
    versions: dict[str, int]  # each type's last change (the store's `type_rv`) before it was read
    objects: dict[str, list[dict[str, Any]]]


def _read(store: Store, kept: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The lists of READ_TYPES; those in `kept` (unchanged since they were read) are not read again."""
    objects: dict[str, list[dict[str, Any]]] = {}
    for type_key, namespace in READ_TYPES:
        if type_key in kept:
            objects[type_key] = kept[type_key]
            continue
        for _ in range(3):  # the store's dicts may change under a lock-free read: read again
            try:
                objects[type_key] = store.list(type_key, namespace)
                break
            except RuntimeError:
                continue
    return objects


def synced_clusters(mesh: Mesh, model: istiod_model.IstiodModel) -> dict[ControlPlane, set[str]]:
    """For each istiod (each revision of each cluster), the sandbox clusters whose endpoints it gives
    its proxies: those its clusterz lists as synced, and one whose rotated kubeconfig is still
    syncing while the previous one works (`IstiodModel.serving`)."""
    by_endpoint = {c.endpoint: name for name, c in mesh.clusters.items() if c.endpoint}
    synced: dict[ControlPlane, set[str]] = {}
    for name, cluster in mesh.clusters.items():
        for istiod in istiod_model.istiods(cluster):
            model.clusterz(name, cluster, istiod)  # reconciles its secrets, probes what is due
            for server in model.serving(name, istiod).values():
                if server in by_endpoint:
                    synced.setdefault(ControlPlane(name, istiod.revision), set()).add(by_endpoint[server])
    return synced


class DataPlane:
    """The sandbox's proxies: injection at pod creation, traffic at the gateways' addresses."""

    def __init__(self, sources: Sources, *, model: istiod_model.IstiodModel | None = None) -> None:
        self.sources = sources
        self.model = model or istiod_model.IstiodModel(probe.probe)
        self.traffic = Traffic(self.snapshot)
        self._known: list[Source] = []
        self._cached: tuple[float, Mesh] | None = None
        self._reads: dict[str, _Read] = {}  # by cluster id
        self._balancers: dict[str, tuple[tuple[int, str], dict[str, list[tuple[str, int]]]]] = {}
        self._lock = threading.Lock()
        self._building = threading.Lock()
        self.listeners = gateway.Listeners(self.traffic.request)
        self._told: set[str] = set()  # Services whose ports over the caps were logged
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- snapshots ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read which clusters exist (takes the world lock: never from the admission hook)."""
        self._known = self.sources.clusters()

    def _mesh(self, firewalls: list[dict[str, Any]]) -> Mesh:
        clusters = {s.node.cluster: Cluster(s.node, s.endpoint, self._objects(s)) for s in self._known}
        return Mesh(clusters, firewalls)

    def _objects(self, source: Source) -> dict[str, list[dict[str, Any]]]:
        """`_read` of one cluster, read again only once its store has changed (its resourceVersion),
        and then only the types that changed (the store's `type_rv`, when it keeps one): every pod
        admission and Istio config write reads every cluster, 50 x 14 deep-copied lists at 50
        clusters. The lists are only read, never changed, by the mesh's users."""
        # Read before the lists: a change during them makes the next caller read again. A store
        # without a resourceVersion is read every time.
        rv: int | None = getattr(source.store, "rv", None)
        hit = self._reads.get(source.id)
        if rv is not None and hit is not None and hit.rv == rv:
            return hit.objects
        changed: dict[str, int] | None = getattr(source.store, "type_rv", None)
        versions = {t: changed.get(t, 0) for t, _ in READ_TYPES} if changed is not None else {}
        kept = {
            t: hit.objects[t]
            for t, v in versions.items()
            if hit is not None and hit.versions.get(t) == v and t in hit.objects
        }
        objects = _read(source.store, kept)
        if rv is not None:
            self._reads[source.id] = _Read(rv, versions, objects)
        return objects

    def snapshot(self) -> Mesh:
        """The mesh as the proxies see it now (cached for SNAPSHOT_SECONDS).

        One request builds it; requests arriving meanwhile wait for that one instead of each
        building their own (concurrent requests made eight at once, every one probing clusters).
        """
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        with self._building:
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            self.refresh()
            mesh = self._mesh(self.sources.firewalls())
            mesh.synced = synced_clusters(mesh, self.model)
            with self._lock:
                self._cached = (time.monotonic(), mesh)
            return mesh

    def _fresh(self) -> Mesh | None:
        with self._lock:
            cached = self._cached
        return cached[1] if cached and time.monotonic() - cached[0] < SNAPSHOT_SECONDS else None

    def admit_pod(self, cluster_id: str, pod: dict[str, Any]) -> str | None:
        """The injector webhook for a pod the emulator creates in `cluster_id` (mutates it, or refuses)."""
        source = self._source(cluster_id)
        if source is None:
            return None
        return injection.admit(self._mesh([]), source.node.cluster, pod)

    def review_config(
        self, cluster_id: str, group: str, plural: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> tuple[int, str] | None:
        """istiod's validation webhook for a write the emulator is about to store in `cluster_id`."""
        if group not in validation.ISTIO_GROUPS:
            return None
        source = self._source(cluster_id)
        return (
            None
            if source is None
            else validation.review(self._mesh([]), source.node.cluster, group, plural, obj, old)
        )

    def run_pod(
        self, cluster_id: str, pod: dict[str, Any]
    ) -> Callable[[dict[str, Any]], tuple[int, str]] | None:
        """How to run a bare pod's container when it runs curl: its request leaves from the started
        pod through the data plane; (exit code, output). None for any other command."""
        words = curl.argv(pod)
        if words is None:
            return None

        def run(started: dict[str, Any]) -> tuple[int, str]:
            source = self._source(cluster_id)
            if source is None:
                return 7, "curl: (7) Couldn't connect to server: the pod's cluster is gone"
            cluster = source.node.cluster
            return curl.run(
                words, lambda host, port, path: self.traffic.from_pod(cluster, started, host, port, path)
            )

        return run

    def _source(self, cluster_id: str) -> Source | None:
        source = next((s for s in self._known if s.id == cluster_id), None)
        if source is None:  # a cluster newer than the last poll
            self._known = self.sources.clusters(locked=False)
            source = next((s for s in self._known if s.id == cluster_id), None)
        return source

    # -- listeners ----------------------------------------------------------------------------

    def wanted(self) -> set[tuple[str, int]]:
        """(loopback address, port) of the LoadBalancer Services with an address, within the caps."""
        by_service: dict[str, list[tuple[str, int]]] = {}
        for s in self._known:
            by_service.update(self._load_balancers(s))
        self._balancers = {k: v for k, v in self._balancers.items() if k in {s.id for s in self._known}}
        return gateway.capped(by_service, told=self._told)

    def _load_balancers(self, source: Source) -> dict[str, list[tuple[str, int]]]:
        """The loopback (address, port)s of one cluster's LoadBalancer Services, by Service; read again
        only once its store has changed (its resourceVersion, read before the list, as `_objects`
        does): the poller asks every cluster four times a second."""
        rv: int | None = getattr(source.store, "rv", None)
        hit = self._balancers.get(source.id)
        if rv is not None and hit is not None and hit[0] == (rv, source.node.cluster):
            return hit[1]
        found: dict[str, list[tuple[str, int]]] = {}
        for svc in source.store.list("/services"):
            if dotted.get(svc, "spec.type") != "LoadBalancer":
                continue
            name = f"{source.node.cluster}/{svc['metadata'].get('namespace')}/{svc['metadata']['name']}"
            found[name] = [
                (ip, int(p["port"]))
                for lb in dotted.get(svc, "status.loadBalancer.ingress", []) or []
                if _loopback(ip := str(lb.get("ip") or ""))
                for p in dotted.get(svc, "spec.ports", []) or []
                if isinstance(p, dict) and isinstance(p.get("port"), int)
            ]
        if rv is not None:
            self._balancers[source.id] = ((rv, source.node.cluster), found)
        return found

    def reconcile(self) -> None:
        self.refresh()
        self.listeners.sync(self.wanted())

    def _reconcile_guarded(self) -> None:
        try:
            self.reconcile()
        except Exception:  # one bad object must not stop the gateways (nor a start)
            log.exception("data plane: reconcile failed")

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._reconcile_guarded()

    def start(self) -> DataPlane:
        self._reconcile_guarded()
        self._thread = threading.Thread(target=self._poll, name="dataplane", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling first (a reconcile in progress may still open a listener), then close them all."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self.listeners.close()


def _loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class Traffic:
    """Requests through the sandbox's proxies: routing decisions plus round robin and delays."""

    def __init__(self, snapshot: Callable[[], Mesh], *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.snapshot, self.sleep = snapshot, sleep
        self._counters: dict[tuple[str, ...], itertools.count[int]] = {}
        self._lock = threading.Lock()
        self.failures: list[str] = []  # the last reasons, newest last (diagnosis for logs and tests)

    def pick(self, key: tuple[str, ...], n: int) -> int:
        with self._lock:
            counter = self._counters.setdefault(key, itertools.count())
            return next(counter) % n

    def _failed(self, failure: Failure) -> tuple[int, bytes]:
        self.failures = [*self.failures[-99:], failure.why]
        log.info("data plane: %s", failure.why)
        if failure.delayed:
            self.sleep(FAILURE_DELAY)
        return failure.status, failure.body

    def request(self, address: str, port: int, path: str, host: str = "") -> tuple[int, bytes, str]:
        """A GET reaching the ingress gateway at address:port: (status, body, content type); status 0
        means no answer (the listener resets the connection)."""
        mesh = self.snapshot()
        entry = ingress.route(mesh, address, port, host or address, path.split("?")[0], pick=self.pick)
        if isinstance(entry, Failure):
            status, body = self._failed(entry)
            return status, body, apps.TEXT  # 0: the connection is reset without an answer
        hop = dataplane.connect(
            mesh, entry.cluster, entry.gateway_pod, entry.host, entry.port, pick=self.pick, dns=False
        )
        if isinstance(hop, Failure):
            status, body = self._failed(hop)
            return status or 503, body, apps.TEXT
        return self._serve(mesh, hop, path.split("?")[0], 0)

    def from_pod(
        self, cluster: str, pod: dict[str, Any], host: str, port: int, path: str
    ) -> tuple[int, bytes] | Failure:
        """A GET sent by a pod of `cluster` (its proxy, or kube-proxy for a pod without one)."""
        mesh = self.snapshot()
        if cluster not in mesh.clusters:
            return Failure(0, b"", f"{cluster} is not serving", transport=dataplane.UNRESOLVED)
        hop = dataplane.connect(mesh, cluster, pod, host, port, pick=self.pick)
        if isinstance(hop, Failure):
            self._failed(hop)
            return hop
        status, body, _ = self._serve(mesh, hop, path.split("?")[0], 0)
        return status, body

    def _serve(self, mesh: Mesh, ep: Endpoint, path: str, depth: int) -> tuple[int, bytes, str]:
        def call(host: str, sub_path: str) -> tuple[int, bytes]:
            if depth >= MAX_HOPS:
                return 508, b"loop detected"
            hop = dataplane.connect(mesh, ep.cluster, ep.pod, host, apps.PORT, pick=self.pick)
            if isinstance(hop, Failure):
                return self._failed(hop)
            status, body, _ = self._serve(mesh, hop, sub_path, depth + 1)
            return status, body

        try:
            return apps.answer(ep.pod, path, call)
        except Exception:  # a bug of ours is the application crashing: Envoy's reset, not a dropped client
            log.exception("data plane: %s failed on %.200s", ep.name, path)
            return 503, RESET, apps.TEXT
