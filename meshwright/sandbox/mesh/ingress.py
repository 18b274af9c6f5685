"""How an Istio ingress gateway would route a request that reaches its address. Pure.

An address belongs to a LoadBalancer Service; its pods (ready, with their proxy) take the config of
their control plane's cluster: Gateways selecting them with a server on the port, VirtualServices
bound to those Gateways; exact/prefix/regex URI matches in order; no match is Envoy's 404 with an
empty body. No Gateway server on the port: no listener, so the connection is reset without an
answer (status 0 here). Where the routed request goes next is `dataplane.connect`'s decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshwright.sandbox import dotted
from meshwright.sandbox.mesh import configcheck
from meshwright.sandbox.mesh.dataplane import (
    NO_UPSTREAM,
    VIRTUAL_SERVICES,
    Failure,
    Mesh,
    Pick,
    named,
    selecting,
    service_of,
    target_port,
)
from meshwright.sandbox.mesh.revisions import ControlPlane, revision_of


@dataclass(frozen=True)
class Entry:
    """A request accepted by an ingress gateway pod and routed to a destination host."""

    cluster: str
    gateway_pod: dict[str, Any]
    host: str  # destination host, qualified with the VirtualService's namespace
    port: int


def _uri_matches(match: dict[str, Any], path: str) -> bool:
    uri = match.get("uri")
    if not uri:
        return True
    if "exact" in uri:
        return bool(path == uri["exact"])
    if "prefix" in uri:
        return path.startswith(uri["prefix"])
    if "regex" in uri:
        return configcheck.fullmatch(str(uri["regex"]), path)  # RE2, as Envoy: linear time, never raises
    return False


def _host_matches(patterns: list[str], host: str) -> bool:
    host = host.split(":")[0]
    for p in patterns:
        p = p.split("/", 1)[-1]
        if p == "*" or p == host or (p.startswith("*.") and host.endswith(p[1:])):
            return True
    return False


def _listening(svc: dict[str, Any], target: int) -> set[int]:
    """Gateway server ports that land on the pods' `target`: itself, and each Service port mapped to it
    (istiod translates a Gateway port equal to a Service port into that port's targetPort)."""
    return {target} | {
        int(p["port"])
        for p in dotted.get(svc, "spec.ports", []) or []
        if target_port(svc, p.get("port", 0)) == target
    }


def _bound_gateways(
    mesh: Mesh, config: ControlPlane, labels: dict[str, str], ports: set[int], host: str
) -> list[str]:
    names = []
    for gw in selecting(mesh.clusters[config.cluster], labels):
        for server in dotted.get(gw, "spec.servers", []) or []:
            if dotted.get(server, "port.number") in ports and _host_matches(server.get("hosts") or [], host):
                names.append(f"{gw['metadata'].get('namespace', 'default')}/{gw['metadata']['name']}")
    return names


def _destination(
    mesh: Mesh, config: ControlPlane, bound: list[str], host: str, path: str
) -> tuple[str, int] | None:
    for vs in mesh.clusters[config.cluster].list(VIRTUAL_SERVICES):
        ns = vs["metadata"].get("namespace", "default")
        refs = {g if "/" in g else f"{ns}/{g}" for g in dotted.get(vs, "spec.gateways", []) or []}
        if not refs & set(bound) or not _host_matches(dotted.get(vs, "spec.hosts", []) or [], host):
            continue
        for route in dotted.get(vs, "spec.http", []) or []:
            if not route.get("match") or any(_uri_matches(m, path) for m in route["match"]):
                dest = ((route.get("route") or [{}])[0]).get("destination") or {}
                target, dest_ns = str(dest.get("host", "")), ns
                dest_host = target if "." in target else f"{target}.{dest_ns}"
                return dest_host, int(dotted.get(dest, "port.number", 0) or 0)
    return None


def route(mesh: Mesh, address: str, port: int, host: str, path: str, *, pick: Pick) -> Entry | Failure:
    """How the ingress gateway at `address`:`port` routes `path`; Envoy's 404 when nothing matches."""
    owner = mesh.load_balancer(address)
    if owner is None:
        return Failure(0, b"", f"no load balancer at {address}")
    cluster, svc = owner
    target = target_port(svc, port)
    pods = mesh.pods_behind(cluster, svc)
    if target is None or not pods:
        return Failure(
            503,
            NO_UPSTREAM,
            f"no ready gateway pod with its proxy behind {svc['metadata']['name']} in {cluster}",
        )
    pod = pods[pick((address, str(port)), len(pods))]
    config = mesh.control_plane(cluster, revision_of(pod))
    if config is None:
        return Failure(503, NO_UPSTREAM, f"the gateway in {cluster} has no control plane")
    bound = _bound_gateways(mesh, config, pod["metadata"].get("labels") or {}, _listening(svc, target), host)
    if not bound:  # Envoy opens a listener only for a Gateway server: nothing accepts on this port
        why = f"no Gateway server selects the gateway in {cluster} on port {target} (connection reset)"
        return Failure(0, b"", why)
    dest = _destination(mesh, config, bound, host, path)
    if dest is None:
        return Failure(404, b"", f"no VirtualService bound to {', '.join(bound)} matches {path}")
    dest_host, dest_port = dest
    return Entry(cluster, pod, dest_host, dest_port or _only_port(mesh, cluster, dest_host))


def _only_port(mesh: Mesh, cluster: str, host: str) -> int:
    """A destination without a port goes to its Service's only port (0 when it has none or several)."""
    ns, name = service_of(host, "default")
    svc = named(mesh.clusters[cluster].list("/services", ns), name)
    ports = dotted.get(svc or {}, "spec.ports", []) or []
    return int(ports[0].get("port", 0)) if len(ports) == 1 else 0
