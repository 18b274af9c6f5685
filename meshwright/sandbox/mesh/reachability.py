"""Whether one pod can open a connection to another, by the rules of the network they sit on. Pure.

- Same cluster: GKE's own firewall rules (`gke-<cluster>-...-all`) let a cluster's pods reach its
  nodes, so pod-to-pod inside a cluster always connects.
- Across clusters on one VPC: only a Compute firewall rule lets the packet in. Rules are read as
  VPC firewalls evaluate them: INGRESS, not disabled, on the VPC; source range containing the
  source pod's IP; target tags meeting the target nodes' tags (no tags: every instance); the
  protocol and port allowed. The lowest priority number decides; at equal priority a deny wins;
  nothing matching is the implied deny.
- Across Istio networks: through the target network's east-west gateway (see `dataplane`).
- Mutual TLS (checked by `dataplane`): both proxies' certificates chain to the same root.

`why_not` answers in words an operator can act on, e.g. `no firewall rule lets 10.8.0.0/14 reach
west's nodes on tcp:9080`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_PROTOCOL_NUMBERS = {"tcp": "6", "udp": "17", "icmp": "1", "esp": "50", "ah": "51", "sctp": "132"}


@dataclass(frozen=True)
class Node:
    """Where a pod runs, as the VPC sees it: its cluster's VPC, pod range and node tags."""

    cluster: str
    project: str
    vpc: str
    pod_cidr: str
    tags: tuple[str, ...]


def _vpc(rule: dict[str, Any]) -> str:
    return str(rule.get("network", "")).rsplit("/", 1)[-1]


def _covers(ranges: Iterable[str], ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    for r in ranges:
        try:
            if addr in ipaddress.ip_network(r, strict=False):
                return True
        except ValueError:
            continue
    return False


def _port_in(ports: list[str] | None, port: int) -> bool:
    if not ports:
        return True
    for p in ports:
        low, _, high = str(p).partition("-")
        if low.isdigit() and int(low) <= port <= int(high or low):
            return True
    return False


def _permits(entries: list[dict[str, Any]] | None, protocol: str, port: int) -> bool:
    for e in entries or []:
        proto = str(e.get("IPProtocol", "")).lower()
        if proto in ("all", protocol, _PROTOCOL_NUMBERS.get(protocol)) and _port_in(e.get("ports"), port):
            return True
    return False


def _applies(rule: dict[str, Any], project: str, source_ip: str, target: Node) -> bool:
    tags = rule.get("targetTags") or []
    return (
        rule.get("_project", project) == project
        and _vpc(rule) == target.vpc
        and str(rule.get("direction", "INGRESS")) == "INGRESS"
        and not rule.get("disabled", False)
        and _covers(rule.get("sourceRanges") or [], source_ip)
        and (not tags or bool(set(tags) & set(target.tags)))
    )


def firewall_allows(
    firewalls: list[dict[str, Any]], *, source_ip: str, target: Node, protocol: str, port: int
) -> bool:
    """Does the VPC let `source_ip` open `protocol`:`port` to a pod on `target`'s nodes?"""
    verdicts = []
    for rule in firewalls:
        if not _applies(rule, target.project, source_ip, target):
            continue
        if "denied" in rule and _permits(rule.get("denied"), protocol, port):
            verdicts.append((int(rule.get("priority", 1000)), 0))
        elif _permits(rule.get("allowed"), protocol, port):
            verdicts.append((int(rule.get("priority", 1000)), 1))
    return bool(verdicts) and min(verdicts)[1] == 1


def connects(
    firewalls: list[dict[str, Any]], *, source: Node, source_ip: str, target: Node, port: int
) -> str | None:
    """None when a TCP connection from a pod on `source` to a pod on `target` opens; else why not."""
    if source.cluster == target.cluster:
        return None
    if source.vpc != target.vpc or source.project != target.project:
        return f"{source.cluster} and {target.cluster} are not on one VPC network"
    if firewall_allows(firewalls, source_ip=source_ip, target=target, protocol="tcp", port=port):
        return None
    return f"no firewall rule lets {source.pod_cidr} reach {target.cluster}'s nodes on tcp:{port}"
