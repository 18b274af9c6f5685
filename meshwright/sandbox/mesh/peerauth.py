"""Which mutual TLS mode a proxy accepts on a port, from a cluster's PeerAuthentications. Pure.

As istiod composes them (istio/istio pilot/pkg/security/authn/policy_applier.go
`ComposePeerAuthentication`, pilot/pkg/model/authentication.go `getConfigsForWorkload`):

- the policies that apply to a workload are those of its own namespace and of the root namespace
  (meshConfig.rootNamespace, `istio-system` by default);
- a policy without `selector.matchLabels` is mesh-wide in the root namespace and namespace-wide in
  any other; one with a selector is workload-level when the selector is a subset of the pod's labels
  (a selector policy in the root namespace is ignored);
- the narrowest scope wins (workload > namespace > mesh); among equals the oldest
  (creationTimestamp, then name, then namespace: pilot/pkg/model/config.go `configCompareByCreationTime`);
- `UNSET` (or no `mtls`) inherits from the wider scope; with nothing at all the mode is PERMISSIVE;
- a workload-level policy's `portLevelMtls` sets the mode of a workload port (the container port the
  endpoint listens on); an `UNSET` port inherits the workload's mode.

The objects read are the ones of the proxy's config cluster (its istiod's cluster), as istiod reads
them; the caller decides which cluster that is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshwright.sandbox import dotted

PEER_AUTHENTICATIONS = "security.istio.io/peerauthentications"
ROOT_NAMESPACE = "istio-system"
STRICT, PERMISSIVE, DISABLE, UNSET = "STRICT", "PERMISSIVE", "DISABLE", "UNSET"


@dataclass(frozen=True)
class Merged:
    """A workload's composed policy: its mode, and the ports that have their own."""

    mode: str = PERMISSIVE
    per_port: dict[int, str] = field(default_factory=dict)

    def on(self, port: int) -> str:
        return self.per_port.get(port, self.mode)


def _mode(mtls: Any) -> str:
    mode = mtls.get("mode") if isinstance(mtls, dict) else None
    return str(mode) if mode in (STRICT, PERMISSIVE, DISABLE) else UNSET


def _age(policy: dict[str, Any]) -> tuple[str, str, str]:
    meta = policy.get("metadata") or {}
    return str(meta.get("creationTimestamp", "")), str(meta.get("name", "")), str(meta.get("namespace", ""))


def _selector(policy: dict[str, Any]) -> dict[str, str]:
    labels = dotted.get(policy, "spec.selector.matchLabels", {})
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _oldest(policies: list[dict[str, Any]]) -> dict[str, Any] | None:
    return min(policies, key=_age) if policies else None


def _scopes(
    policies: list[dict[str, Any]], namespace: str, labels: dict[str, str], root: str
) -> tuple[dict[str, Any] | None, ...]:
    """The mesh, namespace and workload policy that apply to a pod (each the oldest of its scope)."""
    ns_of = [(p, str(dotted.get(p, "metadata.namespace", ""))) for p in policies]
    mesh = [p for p, ns in ns_of if ns == root and not _selector(p)]
    own = [p for p, ns in ns_of if ns == namespace and ns != root]
    workload = [p for p in own if _selector(p) and _selector(p).items() <= labels.items()]
    return _oldest(mesh), _oldest([p for p in own if not _selector(p)]), _oldest(workload)


def compose(
    policies: list[dict[str, Any]], *, namespace: str, labels: dict[str, str], root: str = ROOT_NAMESPACE
) -> Merged:
    """The policy istiod gives the proxy of a pod with these labels in `namespace`."""
    mode, scopes = PERMISSIVE, _scopes(policies, namespace, labels, root)
    for policy in scopes:  # mesh, namespace, workload: the narrowest that sets a mode wins
        if policy is not None and _mode(dotted.get(policy, "spec.mtls")) != UNSET:
            mode = _mode(dotted.get(policy, "spec.mtls"))
    workload = scopes[2]
    ports = dotted.get(workload or {}, "spec.portLevelMtls", {})
    ports = ports if isinstance(ports, dict) else {}
    per_port = {
        int(p): (_mode(m) if _mode(m) != UNSET else mode) for p, m in ports.items() if str(p).isdigit()
    }
    return Merged(mode, per_port)


def mode_for(policies: list[dict[str, Any]], pod: dict[str, Any], port: int) -> str:
    """The mode the pod's proxy accepts on its workload port `port`."""
    namespace = str(dotted.get(pod, "metadata.namespace", "default"))
    labels = dict(dotted.get(pod, "metadata.labels", {}) or {})
    return compose(policies, namespace=namespace, labels=labels).on(port)
