"""Every name and label meshwright derives from a spec, in one place.

The reaper and teardown find resources by these labels, so creation and deletion must agree.
"""

from __future__ import annotations

import time
from pathlib import Path

from meshwright.spec import EXPIRES_LABEL, MESH_LABEL, ClusterSpec, MeshSpec

ISTIO_NAMESPACE = "istio-system"
REMOTE_SECRET_LABEL = "istio/multiCluster"
READER_SERVICE_ACCOUNT = "istio-reader-service-account"
HELM_RELEASES = ("istio-base", "istiod")
EASTWEST_RELEASE = "istio-eastwestgateway"


def firewall_name(mesh: str) -> str:
    return f"meshwright-{mesh}-pods"


def node_tag(mesh: str) -> str:
    return f"meshwright-{mesh}-node"


def remote_secret_name(cluster: str) -> str:
    return f"istio-remote-secret-{cluster}"


def expiry(spec: MeshSpec, *, now: float | None = None) -> int | None:
    """Unix time after which a reaper may delete what this run creates."""
    ttl = spec.ttl_seconds
    return None if ttl is None else int((time.time() if now is None else now) + ttl)


def resource_labels(spec: MeshSpec, cluster: ClusterSpec, *, expires: int | None) -> dict[str, str]:
    """The labels on every cloud resource of the mesh: the user's, then ours (ours win)."""
    labels = {**cluster.labels, MESH_LABEL: spec.name}
    if expires is not None:
        labels[EXPIRES_LABEL] = str(expires)
    return labels


def default_kubeconfig(mesh: str) -> Path:
    return Path(".meshwright") / mesh / "kubeconfig"
