"""What GKE's service controller makes in Compute for a LoadBalancer Service, and how it names it. Pure.

kubernetes/cloud-provider-gcp providers/gce/gce_loadbalancer_external.go, `ensureExternalLoadBalancer`:
an external load balancer is a static address, a firewall rule, a target pool and a regional
forwarding rule, all named after the load balancer: `a` + the Service's UID without dashes, cut to
32 characters (k8s.io/cloud-provider `DefaultLoadBalancerName`); the firewall rule is
`k8s-fw-<that name>` (`MakeFirewallName`). `createForwardingRule` describes the rule as
`{"kubernetes.io/service-name":"ns/name"}`; `firewallObject` opens the Service's ports to the
cluster's node tag, for the load balancer's address only.

The sandbox keeps the two of them that show whether a load balancer outlived its Service or its
cluster: the forwarding rule (it carries the address) and the `k8s-fw-` rule. The address, target
pool and health checks are not modelled; the forwarding rule's `target` names the target pool GKE
would have made. The node tag stands in for GKE's `gke-<cluster>-<hash>-node`; its hash is not an
API field, the sandbox uses the first 8 characters of the cluster's id.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from meshwright.sandbox import dotted
from meshwright.sandbox.clock import rfc3339_micros

FIREWALL_PREFIX = "k8s-fw-"


@dataclass(frozen=True)
class ServiceBalancer:
    """A LoadBalancer Service as the service controller reads it: who it is, where it listens."""

    uid: str
    namespace: str
    name: str
    ip: str
    ports: tuple[tuple[str, int], ...]  # (protocol, port)
    source_ranges: tuple[str, ...]

    @property
    def lb_name(self) -> str:
        return balancer_name(self.uid)


def balancer_name(uid: str) -> str:
    """k8s.io/cloud-provider `DefaultLoadBalancerName`: "a" + the UID without dashes, at most 32 characters."""
    return ("a" + uid.replace("-", ""))[:32]


def firewall_name(lb_name: str) -> str:
    return FIREWALL_PREFIX + lb_name


def node_tag(cluster_name: str, cluster_id: str) -> str:
    return f"gke-{cluster_name}-{cluster_id[:8]}-node"


def service_balancer(svc: dict[str, Any]) -> ServiceBalancer | None:
    """The balancer of a LoadBalancer Service that has its address; None for any other Service."""
    ingress = dotted.get(svc, "status.loadBalancer.ingress") or []
    ports = [p for p in dotted.get(svc, "spec.ports") or [] if isinstance(p, dict) and p.get("port")]
    if dotted.get(svc, "spec.type") != "LoadBalancer" or not ingress or not ports:
        return None
    meta = svc["metadata"]
    return ServiceBalancer(
        uid=meta["uid"],
        namespace=meta["namespace"],
        name=meta["name"],
        ip=str(ingress[0].get("ip", "")),
        ports=tuple((str(p.get("protocol", "TCP")), int(p["port"])) for p in ports),
        source_ranges=tuple(dotted.get(svc, "spec.loadBalancerSourceRanges") or ["0.0.0.0/0"]),
    )


def forwarding_rule(lb: ServiceBalancer, *, region_link: str) -> dict[str, Any]:
    """The forwarding rule `createForwardingRule` inserts: the first port's protocol, all ports' range."""
    numbers = [port for _, port in lb.ports]
    return {
        "kind": "compute#forwardingRule",
        "id": str(secrets.randbits(63)),
        "creationTimestamp": rfc3339_micros(),
        "name": lb.lb_name,
        "description": f'{{"kubernetes.io/service-name":"{lb.namespace}/{lb.name}"}}',
        "region": region_link,
        "IPAddress": lb.ip,
        "IPProtocol": lb.ports[0][0],
        "portRange": f"{min(numbers)}-{max(numbers)}",
        "target": f"{region_link}/targetPools/{lb.lb_name}",
        "loadBalancingScheme": "EXTERNAL",
        "networkTier": "PREMIUM",
        "selfLink": f"{region_link}/forwardingRules/{lb.lb_name}",
    }


def firewall_body(lb: ServiceBalancer, *, network: str, tag: str) -> dict[str, Any]:
    """The `k8s-fw-` rule `firewallObject` builds: the ports, to the nodes' tag, for the address only."""
    return {
        "name": firewall_name(lb.lb_name),
        "description": (
            f'{{"kubernetes.io/service-name":"{lb.namespace}/{lb.name}", "kubernetes.io/service-ip":"{lb.ip}"}}'
        ),
        "network": f"global/networks/{network}",
        "sourceRanges": list(lb.source_ranges),
        "destinationRanges": [lb.ip],
        "targetTags": [tag],
        "allowed": [{"IPProtocol": lb.ports[0][0].lower(), "ports": port_ranges(p for _, p in lb.ports)}],
    }


def port_ranges(ports: Any) -> list[str]:
    """Consecutive ports as one range, as `getPortsAndProtocol` hands them to the firewall rule."""
    ranges: list[list[int]] = []
    for port in sorted(set(ports)):
        if ranges and port == ranges[-1][1] + 1:
            ranges[-1][1] = port
        else:
            ranges.append([port, port])
    return [str(a) if a == b else f"{a}-{b}" for a, b in ranges]
