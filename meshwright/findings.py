"""What the clusters and the VPC say about failed traffic: each finding names what keeps Bookinfo's
requests from flowing, the layer it sits in (cluster, gateway, firewall, endpoints, sidecar) and the
clusters whose traffic it stops. Pure: the tasks read the state (`BookinfoState`, the VPC's firewall
rules), meshwright.traffic joins the findings' text to its problems and meshwright.links picks the
ones about each link.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, Field

from meshwright import bookinfo, naming
from meshwright.spec import MeshSpec

TRAFFIC_PORT = bookinfo.PORT


class BookinfoState(BaseModel):
    """What one cluster holds of Bookinfo and its mesh plumbing (for explaining failed traffic)."""

    cluster: str
    pod_cidr: str = ""
    error: str | None = None
    namespace: bool = False
    injection: bool = False
    services: list[str] = Field(default_factory=list)
    without_sidecar: list[str] = Field(default_factory=list)
    gateways: list[str] = Field(default_factory=list)  # "namespace/name"
    virtual_services: list[str] = Field(default_factory=list)
    cross_network: bool = False  # a Gateway passing *.local through on 15443 (AUTO_PASSTHROUGH)


class Finding(BaseModel):
    """One thing in the clusters or the VPC that keeps traffic from flowing, the layer it sits in
    (cluster, gateway, firewall, endpoints, sidecar) and the clusters whose traffic it stops."""

    layer: str
    clusters: list[str]
    text: str
    source: str = ""  # firewall: the pod range not let in
    target: str = ""  # firewall: the cluster whose nodes it does not reach


def _covers(ranges: list[str], cidr: str) -> bool:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    for r in ranges:
        try:
            if net.subnet_of(ipaddress.ip_network(r, strict=False)):  # type: ignore[arg-type]
                return True
        except (ValueError, TypeError):
            continue
    return False


def _ports(entries: list[dict[str, Any]] | None, port: int) -> bool:
    for e in entries or []:
        if str(e.get("IPProtocol", "")).lower() not in ("tcp", "all", "6"):
            continue
        ranges = e.get("ports") or []
        if not ranges or any(
            int(p.split("-")[0]) <= port <= int(p.split("-")[-1])
            for p in map(str, ranges)
            if p.split("-")[0].isdigit()
        ):
            return True
    return False


def firewall_lets(rules: list[dict[str, Any]], *, vpc: str, source: str, tag: str, port: int) -> bool:
    """VPC firewall semantics (INGRESS, enabled, lowest priority number decides, deny wins ties)."""
    verdicts = []
    for rule in rules:
        tags = rule.get("targetTags") or []
        if (
            str(rule.get("network", "")).rsplit("/", 1)[-1] != vpc
            or rule.get("direction", "INGRESS") != "INGRESS"
            or rule.get("disabled")
            or not _covers(rule.get("sourceRanges") or [], source)
            or (tags and tag not in tags)
        ):
            continue
        if rule.get("denied") and _ports(rule["denied"], port):
            verdicts.append((int(rule.get("priority", 1000)), 0))
        elif _ports(rule.get("allowed"), port):
            verdicts.append((int(rule.get("priority", 1000)), 1))
    return bool(verdicts) and min(verdicts)[1] == 1


def findings(
    spec: MeshSpec, states: dict[str, BookinfoState], rules: list[dict[str, Any]] | None
) -> list[str]:
    """Everything in the clusters and the VPC that keeps Bookinfo's traffic from flowing."""
    return [f.text for f in explain(spec, states, rules)]


def explain(
    spec: MeshSpec, states: dict[str, BookinfoState], rules: list[dict[str, Any]] | None
) -> list[Finding]:
    """`findings`, each with its layer and the clusters whose traffic it stops."""
    assert spec.bookinfo is not None
    ns, found = spec.bookinfo.namespace, []
    for c in spec.clusters:
        s = states.get(c.name)
        if s is None or s.error:
            found.append(
                Finding(
                    layer="cluster", clusters=[c.name], text=f"{c.name}: {s.error if s else 'not observed'}"
                )
            )
            continue
        found += _cluster_findings(spec, s, ns)
    if rules is not None:
        found += _firewall_findings(spec, states, rules)
    return found


def _cluster_findings(spec: MeshSpec, s: BookinfoState, ns: str) -> list[Finding]:
    here = [s.cluster]
    if not s.namespace:
        return [Finding(layer="endpoints", clusters=here, text=f"{s.cluster}: namespace {ns} does not exist")]
    found = []
    if not s.injection:
        text = f"namespace {ns} in {s.cluster} is not labelled istio-injection=enabled"
        found.append(Finding(layer="sidecar", clusters=here, text=text))
    for svc in bookinfo.SERVICES:
        if svc not in s.services:
            text = f"Service {ns}/{svc} is missing in {s.cluster}: callers there cannot resolve {svc}"
            found.append(Finding(layer="endpoints", clusters=here + _running(spec, svc), text=text))
    if s.without_sidecar:
        text = f"{s.cluster}: pod(s) without istio-proxy sidecar: {', '.join(s.without_sidecar)}"
        found.append(Finding(layer="sidecar", clusters=here, text=text))
    return found + _gateway_findings(spec, s, ns)


def _running(spec: MeshSpec, service: str) -> list[str]:
    return [c.name for c in spec.clusters if any(w.service == service for w in bookinfo.placed(spec, c.name))]


def _gateway_findings(spec: MeshSpec, s: BookinfoState, ns: str) -> list[Finding]:
    """The ingress's Gateway and VirtualService stop every request; a primary of a multi-network
    mesh without the cross-network Gateway stops the way into the workloads it configures."""
    found, everyone = [], [c.name for c in spec.clusters]
    if s.cluster in bookinfo.config_clusters(spec):
        if f"{ns}/{bookinfo.GATEWAY}" not in s.gateways:
            text = f"{s.cluster}: Gateway {ns}/{bookinfo.GATEWAY} is missing"
            found.append(Finding(layer="gateway", clusters=everyone, text=text))
        if f"{ns}/{bookinfo.VIRTUAL_SERVICE}" not in s.virtual_services:
            text = f"{s.cluster}: VirtualService {ns}/{bookinfo.VIRTUAL_SERVICE} is missing"
            found.append(Finding(layer="gateway", clusters=everyone, text=text))
    c = spec.cluster(s.cluster)
    if spec.multi_network and c.primary is None and not s.cross_network:
        configured = [s.cluster, *(r.name for r in spec.remotes if r.primary == s.cluster)]
        text = (
            f"{s.cluster}: no Gateway passes *.local through on 15443 (AUTO_PASSTHROUGH, cross-network-gateway): "
            "other networks cannot reach the workloads it configures"
        )
        found.append(Finding(layer="gateway", clusters=configured, text=text))
    return found


def firewall_gap(sources: list[str], target: str) -> str:
    """The sentence for pod ranges that no firewall rule lets reach a cluster's nodes."""
    return f"no firewall rule lets {', '.join(sources)} reach {target}'s nodes on tcp:{TRAFFIC_PORT}"


def _firewall_findings(
    spec: MeshSpec, states: dict[str, BookinfoState], rules: list[dict[str, Any]]
) -> list[Finding]:
    found, tag = [], naming.node_tag(spec.name)
    for src in spec.clusters:
        for dst in spec.clusters:
            cidr = states[src.name].pod_cidr if src.name in states else ""
            if src.name == dst.name or not cidr or spec.istio_network(src) != spec.istio_network(dst):
                continue
            if not firewall_lets(rules, vpc=spec.network, source=cidr, tag=tag, port=TRAFFIC_PORT):
                found.append(
                    Finding(
                        layer="firewall",
                        clusters=[src.name, dst.name],
                        text=firewall_gap([cidr], dst.name),
                        source=cidr,
                        target=dst.name,
                    )
                )
    return found
