"""Locality load balancing, as istiod programs it into Envoy: which of a Service's endpoints a caller's
proxy sends to. Pure.

Without a DestinationRule that turns it on, a proxy balances over every endpoint it knows. Istio's
mesh default enables locality load balancing (meshConfig.localityLbSetting.enabled), but istiod
applies its failover priorities only when the DestinationRule of the host sets `outlierDetection`
("Failover should only be applied with outlier detection, or traffic will never failover":
pilot/pkg/networking/core/loadbalancer/loadbalancer.go `ApplyToCluster`). Then each endpoint gets
a priority from its locality against the caller's (`applyLocalityFailover`: 0 same region, zone and
subzone, 1 same region and zone, 2 same region, 3 elsewhere, 4 elsewhere but not where a
`failover` entry from the caller's region points), and Envoy sends to the best priority that has
endpoints: an endpoint set that loses its local pods (a Deployment scaled to 0, the pods gone from
EDS) fails over to the next. A locality is the region and zone labels of the pod's node.

Not modelled: `distribute` weights and `failoverPriority` labels (the endpoints are left to round
robin, as without the rule), and Envoy's overprovisioning factor (a priority with some endpoints
counts as whole: the sandbox only ever has healthy ones in EDS).
"""

from __future__ import annotations

from typing import Any, Protocol

from meshwright.sandbox import dotted

DESTINATION_RULES = "networking.istio.io/destinationrules"
NODES = "/nodes"
REGION, ZONE, SUBZONE = (
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
)
ROOT_NAMESPACE = "istio-system"
Locality = tuple[str, str, str]


class Objects(Protocol):
    def list(self, type_key: str, namespace: str | None = None) -> list[dict[str, Any]]: ...


def _hosts(rule: dict[str, Any]) -> set[str]:
    """The names a rule's `host` means: a short name is taken relative to the rule's namespace."""
    host, ns = str(dotted.get(rule, "spec.host", "")), rule["metadata"].get("namespace", "default")
    parts = host.split(".")
    name, namespace = parts[0], parts[1] if len(parts) > 1 else ns
    return {f"{name}.{namespace}.svc.cluster.local"} if host else set()


def destination_rule(config: Objects, caller_ns: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The DestinationRule the caller's istiod applies to `name.namespace`: the caller's namespace's
    first, then the Service's, then the root namespace's (Istio's SidecarScope lookup order)."""
    fqdn = f"{name}.{namespace}.svc.cluster.local"
    rules = config.list(DESTINATION_RULES)
    for ns in dict.fromkeys((caller_ns, namespace, ROOT_NAMESPACE)):
        found = [r for r in rules if r["metadata"].get("namespace") == ns and fqdn in _hosts(r)]
        if found:
            return min(
                found, key=lambda r: (r["metadata"].get("creationTimestamp", ""), r["metadata"]["name"])
            )
    return None


def setting(rule: dict[str, Any] | None) -> dict[str, Any] | None:
    """The rule's locality setting when istiod applies failover priorities with it; else None."""
    policy = dotted.get(rule or {}, "spec.trafficPolicy", {}) or {}
    if not policy.get("outlierDetection"):
        return None
    lb = dotted.get(policy, "loadBalancer.localityLbSetting", {}) or {}
    if lb.get("enabled") is False or lb.get("distribute") or lb.get("failoverPriority"):
        return None
    return dict(lb)


def locality(objects: Objects, pod: dict[str, Any]) -> Locality:
    """Region, zone and subzone of the node a pod runs on (empty where unknown)."""
    node_name = dotted.get(pod, "spec.nodeName", "")
    node = next((n for n in objects.list(NODES) if n["metadata"]["name"] == node_name), None)
    labels = dotted.get(node or {}, "metadata.labels", {}) or {}
    return labels.get(REGION, ""), labels.get(ZONE, ""), labels.get(SUBZONE, "")


def priority(caller: Locality, endpoint: Locality, failover: list[dict[str, Any]]) -> int:
    """`util.LbPriority` with the `failover` entries of `applyLocalityFailover`."""
    if caller[0] != endpoint[0]:
        entry = next((f for f in failover if f.get("from") == caller[0]), None)
        return 4 if entry is not None and endpoint[0] != entry.get("to") else 3
    if caller[1] != endpoint[1]:
        return 2
    return 0 if caller[2] == endpoint[2] else 1


def preferred(lb: dict[str, Any], caller: Locality, endpoints: list[tuple[Locality, Any]]) -> list[Any]:
    """The endpoints of the best priority that has any (Envoy's priority levels)."""
    if not endpoints:
        return []
    failover = [f for f in lb.get("failover") or [] if isinstance(f, dict)]
    ranked = [(priority(caller, where, failover), ep) for where, ep in endpoints]
    best = min(p for p, _ in ranked)
    return [ep for p, ep in ranked if p == best]
