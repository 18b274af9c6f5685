"""How Istio's proxies would route a request, decided from cluster and Compute state. Pure.

Nothing runs in the sandbox's pods, so this module decides what a request meets, step by step, from
a `Mesh` snapshot (the objects of every cluster, the VPC firewall rules, and which clusters each
istiod has synced), with the rules Istio and the VPC apply:

- **Control plane.** A proxy belongs to the revision of the istiod that injected it (the pod's
  `istio.io/rev` annotation, which Istio's injection template writes; "default" without one). Its
  istiod is its own cluster's ready istiod of that revision (a primary), or, for a remote, the
  istiod behind the remote's Service `istiod[-<rev>]` (its discoveryAddress: EndpointSlices /
  Endpoints name an east-west gateway address whose Gateway passes 15012 through and whose
  VirtualService routes that SNI to a ready istiod: see `tlsroute`). Two revisions in one cluster
  are two control planes, each with its own clusterz. No control plane (its revision's istiod is
  gone): the proxy has no configuration. Divergence, on purpose: a real Envoy keeps its last
  configuration and certificate for a while; here it stops at once, so that a revision removed
  before its pods moved shows.
- **Names.** A caller resolves `reviews` only if the Service exists in its own cluster.
- **Endpoints.** The control plane knows its own cluster and every cluster it has `synced`
  (clusterz); Services merge by namespace and name; only ready pods with an `istio-proxy` count.
  A pod without sidecar sends plaintext through kube-proxy: its own cluster's pods only.
- **Balancing.** Round robin over every known endpoint, reachable or not, as Envoy's does; where
  the host's DestinationRule sets `outlierDetection`, over those of the caller's best locality
  priority only (locality failover: see `locality`).
- **Paths.** Same Istio network: pod to pod, so the VPC must let the caller's pod in (see
  `reachability`). Other network: through an east-west gateway of the endpoint's network (an
  address, port 15443, a Gateway with `AUTO_PASSTHROUGH` for `*.local`), then gateway pod to pod.
  Mutual TLS: the caller's and the endpoint's control planes (each pod's own revision) sign with
  the same root.
- **Peer authentication** (`peerauth`, from the PeerAuthentications of each proxy's config
  cluster). Auto mTLS: a caller's proxy sends mTLS to an endpoint with a sidecar unless the
  endpoint's mode, as the caller's istiod computes it, is DISABLE (istio/istio
  pilot/pkg/xds/endpoints/mtls_checker.go `checkMtlsEnabled`); an endpoint on another network it
  would not send mTLS to is left out, since the east-west gateway routes by mTLS SNI
  (pilot/pkg/xds/endpoints/ep_filters.go `EndpointsByNetworkFilter`). The endpoint's proxy
  enforces its own mode: STRICT resets a plaintext connection, DISABLE does not speak TLS (the
  caller's Envoy sees its connection terminated), PERMISSIVE takes both. A caller without
  sidecar always sends plaintext (tests/integration/security/reachability_test.go: "global mtls
  strict" succeeds except from naked callers).
- **Ingress.** An address belongs to a LoadBalancer Service: see `ingress`.

A failed connection is Envoy's 503 `upstream connect error or disconnect/reset before headers.
reset reason: connection failure`, after a short delay. Divergence, on purpose: Istio's default
retry policy (2 retries on connect failure, to other hosts) is not applied, so an unreachable
endpoint shows in the traffic instead of only in latency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meshwright.sandbox import dotted
from meshwright.sandbox.mesh import istiod as istiod_model
from meshwright.sandbox.mesh import locality, peerauth
from meshwright.sandbox.mesh.reachability import Node, connects
from meshwright.sandbox.mesh.revisions import (
    DEFAULT_REVISION,
    ControlPlane,
    revision_of,
    service_name,
)
from meshwright.sandbox.mesh.tlsroute import tls_destination

NETWORK_LABEL = "topology.istio.io/network"
ISTIO_NS = "istio-system"
GATEWAYS = "networking.istio.io/gateways"
VIRTUAL_SERVICES = "networking.istio.io/virtualservices"
SLICES = "discovery.k8s.io/endpointslices"
CROSS_NETWORK_PORT = 15443
XDS_PORT, WEBHOOK_PORT = 15012, 15017  # istiod's ports on an east-west gateway (expose-istiod)
UPSTREAM_FAILURE = (
    b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"
)
TLS_FAILURE = UPSTREAM_FAILURE + (
    b", transport failure reason: TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED"
)
NO_UPSTREAM = b"no healthy upstream"
TERMINATED = (
    b"upstream connect error or disconnect/reset before headers. reset reason: connection termination"
)
RESET = "reset"  # Failure.transport: the peer reset the connection (curl: 56, Connection reset by peer)
UNRESOLVED = "unresolved"  # Failure.transport: the name does not resolve (curl: 6)


@dataclass
class Cluster:
    """One cluster as the data plane reads it: where its nodes sit, and its objects by type key."""

    node: Node
    endpoint: str | None = None  # its API server URL (remote secrets name clusters by it)
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.node.cluster

    def list(self, type_key: str, namespace: str | None = None) -> list[dict[str, Any]]:
        items = self.objects.get(type_key, [])
        return [o for o in items if namespace is None or o["metadata"].get("namespace") == namespace]


@dataclass(frozen=True)
class Endpoint:
    cluster: str
    pod: dict[str, Any]
    port: int

    @property
    def ip(self) -> str:
        return str(dotted.get(self.pod, "status.podIP", ""))

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])


@dataclass(frozen=True)
class Failure:
    """What the caller gets instead of the endpoint's answer, and why (for the sandbox's diagnosis)."""

    status: int
    body: bytes
    why: str
    endpoint: Endpoint | None = None
    delayed: bool = False  # a connection attempt that times out or is reset takes time
    transport: str = ""  # with status 0: RESET, UNRESOLVED, or "" (no connection at all)


Pick = Callable[[tuple[str, ...], int], int]


def ready(pod: dict[str, Any]) -> bool:
    conditions = dotted.get(pod, "status.conditions", []) or []
    return dotted.get(pod, "status.phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


def has_sidecar(pod: dict[str, Any]) -> bool:
    return any(c.get("name") == "istio-proxy" for c in dotted.get(pod, "spec.containers", []) or [])


def selected(labels: dict[str, str], selector: dict[str, str] | None) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def selecting(config: Cluster, labels: dict[str, str]) -> list[dict[str, Any]]:
    """The Gateways of a control plane's cluster whose selector picks pods with these labels."""
    return [gw for gw in config.list(GATEWAYS) if selected(labels, dotted.get(gw, "spec.selector"))]


def named(items: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((o for o in items if o["metadata"]["name"] == name), None)


@dataclass
class Mesh:
    """Everything the proxies' behaviour depends on, read at one moment."""

    clusters: dict[str, Cluster]
    firewalls: list[dict[str, Any]] = field(default_factory=list)
    synced: dict[ControlPlane, set[str]] = field(default_factory=dict)  # istiod -> clusters it synced

    # -- addresses and control planes -------------------------------------------------------

    def load_balancer(self, address: str) -> tuple[str, dict[str, Any]] | None:
        """The cluster and LoadBalancer Service that own an external address."""
        for c in self.clusters.values():
            for svc in c.list("/services"):
                ingress = dotted.get(svc, "status.loadBalancer.ingress", []) or []
                if any(i.get("ip") == address or i.get("hostname") == address for i in ingress):
                    return c.name, svc
        return None

    def pods_behind(self, cluster: str, svc: dict[str, Any], *, proxied: bool = True) -> list[dict[str, Any]]:
        selector = dotted.get(svc, "spec.selector")
        pods = self.clusters[cluster].list("/pods", svc["metadata"].get("namespace"))
        return [
            p
            for p in pods
            if selected(p["metadata"].get("labels") or {}, selector)
            and ready(p)
            and (has_sidecar(p) or not proxied)
        ]

    def istiod_behind(self, cluster: str, svc: dict[str, Any]) -> ControlPlane | None:
        """The ready istiod a Service's selector picks in its own cluster."""
        selector = dotted.get(svc, "spec.selector")
        found = (i for i in istiod_model.istiods(self.clusters[cluster]) if selected(i.pod_labels, selector))
        istiod = next(found, None)
        return ControlPlane(cluster, istiod.revision) if istiod else None

    def istiod(self, plane: ControlPlane) -> istiod_model.Istiod | None:
        c = self.clusters.get(plane.cluster)
        running = istiod_model.istiods(c) if c is not None else []
        return next((i for i in running if i.revision == plane.revision), None)

    def service_addresses(self, cluster: str, svc: dict[str, Any]) -> list[str]:
        """Where a selector-less Service leads: ExternalName, EndpointSlices, or v1 Endpoints."""
        if dotted.get(svc, "spec.type") == "ExternalName":
            return [str(dotted.get(svc, "spec.externalName", ""))]
        c, ns, name = self.clusters[cluster], svc["metadata"].get("namespace"), svc["metadata"]["name"]
        found = [
            a
            for s in c.list(SLICES, ns)
            if dotted.get(s, "metadata.labels", {}).get("kubernetes.io/service-name") == name
            for e in s.get("endpoints") or []
            for a in e.get("addresses") or []
        ]
        endpoints = named(c.list("/endpoints", ns), name) or {}
        found += [a.get("ip") for s in endpoints.get("subsets") or [] for a in s.get("addresses") or []]
        return [str(a) for a in dict.fromkeys(found) if a]

    def _gateways(self, cluster: str, gateway_pods: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        """The cluster whose config these gateway pods take (their control plane's) and the Gateways
        there that select them."""
        config = self.control_plane(cluster, revision_of(gateway_pods[0])) if gateway_pods else None
        if config is None:
            return "", []
        labels = gateway_pods[0]["metadata"].get("labels") or {}
        return config.cluster, selecting(self.clusters[config.cluster], labels)

    def _gateway_servers(self, cluster: str, gateway_pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The servers of the Gateways that configure these gateway pods (from their control plane)."""
        _, gateways = self._gateways(cluster, gateway_pods)
        return [server for gw in gateways for server in dotted.get(gw, "spec.servers", []) or []]

    def _passes_through(self, cluster: str, gateway_pods: list[dict[str, Any]], port: int, mode: str) -> bool:
        return any(
            dotted.get(server, "port.number") == port and (server.get("tls") or {}).get("mode") == mode
            for server in self._gateway_servers(cluster, gateway_pods)
        )

    def exposed_istiod(self, address: str, *, port: int = WEBHOOK_PORT, sni: str = "") -> ControlPlane | None:
        """The ready istiod that answers a TLS connection to `address`:`port` with `sni`: the east-west
        gateway there passes the port through (expose-istiod's Gateway) and a VirtualService routes
        the SNI to a Service of its cluster that selects that istiod (see `tlsroute`)."""
        owner = self.load_balancer(address)
        if owner is None:
            return None
        cluster, svc = owner
        pods = self.pods_behind(cluster, svc)
        ports = {p.get("port") for p in dotted.get(svc, "spec.ports", []) or []}
        if port not in ports or not self._passes_through(cluster, pods, port, "PASSTHROUGH"):
            return None
        config, gateways = self._gateways(cluster, pods)
        if not gateways:
            return None
        bound = {f"{g['metadata'].get('namespace', 'default')}/{g['metadata']['name']}" for g in gateways}
        route = tls_destination(self.clusters[config].list(VIRTUAL_SERVICES), bound, port, sni)
        if route is None:
            return None
        namespace, name = service_of(*route)
        target = named(self.clusters[cluster].list("/services", namespace), name)
        return self.istiod_behind(cluster, target) if target is not None else None

    def control_plane(self, cluster: str, revision: str = DEFAULT_REVISION) -> ControlPlane | None:
        """The istiod that configures the proxies of `revision` in `cluster`: a primary's own istiod of
        that revision; for a remote, the one its Service istiod[-<rev>] leads to (the proxies dial
        `istiod[-<rev>].istio-system.svc:15012`, the discoveryAddress of their injector's mesh config)."""
        c = self.clusters.get(cluster)
        if c is None:
            return None
        running = istiod_model.istiods(c)
        if running:
            return ControlPlane(cluster, revision) if any(i.revision == revision for i in running) else None
        name = service_name(revision)
        svc = named(c.list("/services", ISTIO_NS), name)
        if svc is None:
            return None
        sni = f"{name}.{ISTIO_NS}.svc"
        addresses = self.service_addresses(cluster, svc)
        return next((p for a in addresses if (p := self.exposed_istiod(a, port=XDS_PORT, sni=sni))), None)

    # -- what a control plane knows -----------------------------------------------------------

    def peer_mode(self, plane: ControlPlane, ep: Endpoint) -> str:
        """The mTLS mode a control plane computes for an endpoint's proxy, from its own cluster's
        PeerAuthentications (istiod reads Istio config from its config cluster only)."""
        policies = self.clusters[plane.cluster].list(peerauth.PEER_AUTHENTICATIONS)
        return peerauth.mode_for(policies, ep.pod, ep.port)

    def network(self, cluster: str) -> str:
        """A cluster's Istio network: the label on its istio-system namespace ("" = the default)."""
        ns = named(self.clusters[cluster].list("/namespaces"), ISTIO_NS) or {}
        return str(dotted.get(ns, "metadata.labels", {}).get(NETWORK_LABEL, ""))

    def root(self, plane: ControlPlane) -> str:
        """The root a control plane's certificates chain to: cacerts' root, or its own self-signed one."""
        roots = istiod_model.root_fingerprints(self.clusters[plane.cluster])
        return roots[0] if roots else f"self-signed by {plane}"

    def registry(self, plane: ControlPlane) -> list[str]:
        """The clusters whose endpoints a control plane knows: its own and those it has synced."""
        return [plane.cluster, *sorted(self.synced.get(plane, set()) - {plane.cluster})]

    def endpoints(self, control_plane: ControlPlane, namespace: str, name: str, port: int) -> list[Endpoint]:
        found = []
        for cluster in self.registry(control_plane):
            if cluster not in self.clusters:
                continue
            svc = named(self.clusters[cluster].list("/services", namespace), name)
            if svc is None:
                continue
            target = target_port(svc, port)
            found += [Endpoint(cluster, p, target) for p in self.pods_behind(cluster, svc) if target]
        return found

    def eastwest(self, network: str, control_plane: ControlPlane) -> tuple[str, list[dict[str, Any]]] | None:
        """A gateway of `network` the control plane knows, that passes *.local through on 15443."""
        for cluster in self.registry(control_plane):
            for svc in self.clusters[cluster].list("/services", ISTIO_NS):
                labels = svc["metadata"].get("labels") or {}
                if labels.get(NETWORK_LABEL) != network or not dotted.get(svc, "status.loadBalancer.ingress"):
                    continue
                ports = {p.get("port") for p in dotted.get(svc, "spec.ports", []) or []}
                pods = self.pods_behind(cluster, svc)
                if CROSS_NETWORK_PORT in ports and self._auto_passthrough(cluster, pods):
                    return cluster, pods
        return None

    def _auto_passthrough(self, cluster: str, pods: list[dict[str, Any]]) -> bool:
        return any(
            dotted.get(server, "port.number") == CROSS_NETWORK_PORT
            and (server.get("tls") or {}).get("mode") == "AUTO_PASSTHROUGH"
            and any(h in ("*.local", "*") for h in server.get("hosts") or [])
            for server in self._gateway_servers(cluster, pods)
        )


def target_port(svc: dict[str, Any], port: int) -> int | None:
    for p in dotted.get(svc, "spec.ports", []) or []:
        if p.get("port") == port:
            target = p.get("targetPort", port)
            return target if isinstance(target, int) else port
    return None


def service_of(host: str, namespace: str) -> tuple[str, str]:
    """`reviews`, `reviews.bookinfo`, `reviews.bookinfo.svc.cluster.local` -> (namespace, name)."""
    parts = host.split(".")
    return (parts[1] if len(parts) > 1 else namespace), parts[0]


def _node_ip(pod: dict[str, Any]) -> str:
    return str(dotted.get(pod, "status.podIP", "0.0.0.0"))


def _path(
    mesh: Mesh, source: str, source_pod: dict[str, Any], ep: Endpoint, control_plane: ControlPlane
) -> Failure | None:
    """Why a connection from the caller's proxy to `ep` fails; None when it gets through."""
    sender = _sender(mesh, source, source_pod, ep, control_plane)
    if isinstance(sender, Failure):
        return sender
    cluster, pod = sender
    why = connects(
        mesh.firewalls,
        source=mesh.clusters[cluster].node,
        source_ip=_node_ip(pod),
        target=mesh.clusters[ep.cluster].node,
        port=ep.port,
    )
    if why:
        return Failure(503, UPSTREAM_FAILURE, why, ep, delayed=True)
    return _peer_auth(mesh, source, ep, control_plane)


def _sender(
    mesh: Mesh, source: str, source_pod: dict[str, Any], ep: Endpoint, control_plane: ControlPlane
) -> tuple[str, dict[str, Any]] | Failure:
    """The pod whose packets reach `ep`: the caller on its own network, else an east-west gateway's."""
    src_net, dst_net = mesh.network(source), mesh.network(ep.cluster)
    if src_net == dst_net:
        return source, source_pod
    gateway = mesh.eastwest(dst_net, control_plane)
    if gateway is None:
        why = f"{control_plane} knows no east-west gateway of network {dst_net or 'default'} with AUTO_PASSTHROUGH for *.local on {CROSS_NETWORK_PORT}"
        return Failure(503, NO_UPSTREAM, why, ep)
    cluster, pods = gateway
    return cluster, pods[0]


def _mtls(mesh: Mesh, source: str, ep: Endpoint, control_plane: ControlPlane) -> Failure | None:
    """Mutual TLS holds when the caller's and the endpoint's control planes sign with the same root
    (the endpoint's own revision: a pod whose istiod is gone has no certificate)."""
    revision = revision_of(ep.pod)
    theirs = mesh.control_plane(ep.cluster, revision)
    if theirs is None:
        why = f"mTLS between {source} and {ep.cluster} fails: {ep.name} has no istiod of revision {revision}"
        return Failure(503, TLS_FAILURE, why, ep, delayed=True)
    if mesh.root(theirs) == mesh.root(control_plane):
        return None
    mine, other = mesh.root(control_plane)[:16], mesh.root(theirs)[:16]
    why = f"mTLS between {source} and {ep.cluster} fails: roots {mine} and {other} differ"
    return Failure(503, TLS_FAILURE, why, ep, delayed=True)


def _peer_auth(mesh: Mesh, source: str, ep: Endpoint, control_plane: ControlPlane) -> Failure | None:
    """Auto mTLS from a caller's proxy, and what the endpoint's proxy accepts."""
    sends_mtls = mesh.peer_mode(control_plane, ep) != peerauth.DISABLE
    if sends_mtls and (failure := _mtls(mesh, source, ep, control_plane)):
        return failure
    theirs = mesh.control_plane(ep.cluster, revision_of(ep.pod))
    mode = mesh.peer_mode(theirs, ep) if theirs else peerauth.STRICT  # no config: no plaintext listener
    if sends_mtls and mode == peerauth.DISABLE:
        why = f"{ep.name} in {ep.cluster} has mTLS DISABLE on {ep.port}; {control_plane} sent mTLS"
        return Failure(503, TERMINATED, why, ep)
    if not sends_mtls and mode == peerauth.STRICT:
        why = f"{ep.name} in {ep.cluster} is STRICT on {ep.port}; {control_plane} sent plaintext (DISABLE)"
        return Failure(503, TERMINATED, why, ep)
    return None


def _sends_mtls_across(
    mesh: Mesh, source: str, control_plane: ControlPlane, found: list[Endpoint]
) -> list[Endpoint]:
    """The endpoints a caller's proxy gets: those on another network only when it would send them mTLS."""
    here = mesh.network(source)
    return [
        ep
        for ep in found
        if mesh.network(ep.cluster) == here or mesh.peer_mode(control_plane, ep) != peerauth.DISABLE
    ]


def connect(
    mesh: Mesh, source: str, source_pod: dict[str, Any], host: str, port: int, *, pick: Pick, dns: bool = True
) -> Endpoint | Failure:
    """Where a call from `source_pod` (in cluster `source`) to `host`:`port` lands, or what it meets.

    `dns=False` for a gateway, whose proxy routes by istiod's registry without resolving the name.
    """
    namespace, name = service_of(host, source_pod["metadata"].get("namespace", "default"))
    c = mesh.clusters[source]
    svc = named(c.list("/services", namespace), name)
    if svc is None and (dns or not has_sidecar(source_pod)):
        why = f"{name}.{namespace} does not resolve in {source}: no Service {namespace}/{name} there"
        return Failure(0, b"", why, transport=UNRESOLVED)
    key = (source, source_pod["metadata"]["name"], namespace, name, str(port))
    if not has_sidecar(source_pod):
        assert svc is not None
        return _plaintext(mesh, source, svc, port, key, pick=pick)
    revision = revision_of(source_pod)
    control_plane = mesh.control_plane(source, revision)
    if control_plane is None:
        return Failure(
            503, NO_UPSTREAM, f"the proxies of revision {revision} in {source} have no control plane"
        )
    found = _sends_mtls_across(
        mesh, source, control_plane, mesh.endpoints(control_plane, namespace, name, port)
    )
    if not found:
        return Failure(
            503,
            NO_UPSTREAM,
            f"{control_plane} knows no ready endpoint of {namespace}/{name} with a sidecar",
        )
    found = _by_locality(mesh, source, source_pod, control_plane, (namespace, name), found)
    ep = found[pick(key, len(found))]
    return _path(mesh, source, source_pod, ep, control_plane) or ep


def _by_locality(
    mesh: Mesh,
    source: str,
    source_pod: dict[str, Any],
    control_plane: ControlPlane,
    service: tuple[str, str],
    found: list[Endpoint],
) -> list[Endpoint]:
    """The endpoints of the best locality priority, where the host's DestinationRule (from the
    control plane's config cluster) turns locality failover on; all of them otherwise (`locality`)."""
    caller_ns = source_pod["metadata"].get("namespace", "default")
    rule = locality.destination_rule(mesh.clusters[control_plane.cluster], caller_ns, *service)
    lb = locality.setting(rule)
    if lb is None:
        return found
    caller = locality.locality(mesh.clusters[source], source_pod)
    where = [(locality.locality(mesh.clusters[ep.cluster], ep.pod), ep) for ep in found]
    return locality.preferred(lb, caller, where)


def _plaintext(
    mesh: Mesh, source: str, svc: dict[str, Any], port: int, key: tuple[str, ...], *, pick: Pick
) -> Endpoint | Failure:
    """A caller without sidecar goes through kube-proxy: its own cluster's ready pods only."""
    target = target_port(svc, port)
    local = (
        [Endpoint(source, p, target) for p in mesh.pods_behind(source, svc, proxied=False)] if target else []
    )
    if not local:
        what = f"{svc['metadata'].get('namespace')}/{svc['metadata']['name']}"
        return Failure(0, b"", f"no pod of {what} in {source} (caller has no sidecar)")
    ep = local[pick(key, len(local))]
    return _refuses_plaintext(mesh, ep) or ep


def _refuses_plaintext(mesh: Mesh, ep: Endpoint) -> Failure | None:
    """A plaintext connection to a proxy in STRICT mode is reset (its inbound listener has no
    plaintext filter chain); a pod without sidecar, or one PERMISSIVE or DISABLE, takes it."""
    if not has_sidecar(ep.pod):
        return None
    plane = mesh.control_plane(ep.cluster, revision_of(ep.pod))
    mode = mesh.peer_mode(plane, ep) if plane else peerauth.STRICT
    if mode != peerauth.STRICT:
        return None
    why = (
        f"{ep.name} in {ep.cluster} is STRICT on {ep.port}: plaintext from a caller without sidecar is reset"
    )
    return Failure(0, b"", why, ep, transport=RESET)
