"""Every name and label meshwright derives from a spec or shares between stages, in one place.

The reaper and teardown find resources by these labels, so creation and deletion must agree;
`plan` renders the same constants the tasks use, so it cannot drift from what the flows do.
This module imports nothing of meshwright but its settings (a leaf: the home folder) and takes plain
values: the spec itself uses its labels.
"""

from __future__ import annotations

import time
from pathlib import Path

from meshwright.settings import settings

# -- labels on cloud resources ---------------------------------------------------------------
RESERVED_LABEL_PREFIX = "meshwright-"
MESH_LABEL = "meshwright-mesh"
EXPIRES_LABEL = "meshwright-expires"

# -- the firewall rule between the pod ranges ------------------------------------------------
FIREWALL_PRIORITY = 900
FIREWALL_PROTOCOLS = ("tcp", "udp", "icmp", "esp", "ah", "sctp")

# -- Istio -----------------------------------------------------------------------------------
ISTIO_NAMESPACE = "istio-system"
BASE_RELEASE = "istio-base"
ISTIOD_RELEASE = "istiod"  # the step's name; the Helm release is istiod-<revision> (`istiod_release`)
REVISION_TAG = "default"  # the revision tag namespaces and a remote's injection path follow
EASTWEST_RELEASE = "istio-eastwestgateway"
INGRESS_RELEASE = "istio-ingressgateway"
CACERTS_SECRET = "cacerts"
READER_SERVICE_ACCOUNT = "istio-reader-service-account"
READER_TOKEN_SECRET = "istio-reader-service-account-istio-remote-secret-token"
REMOTE_SECRET_LABEL = "istio/multiCluster"
REMOTE_SECRET_ANNOTATION = "networking.istio.io/cluster"
NETWORK_LABEL = "topology.istio.io/network"
CONTROL_PLANE_CLUSTERS_ANNOTATION = "topology.istio.io/controlPlaneClusters"

# -- the kubeconfig meshwright writes ---------------------------------------------------------
# An extension in the kubeconfig's preferences naming the mesh and project it was written for,
# so that `up` can refuse to overwrite the kubeconfig of another mesh.
KUBECONFIG_EXTENSION = "meshwright"


def revision(version: str) -> str:
    """Istio's revision name for a version: `1.30.3` -> `1-30-3` (the canary upgrade docs' convention)."""
    return version.replace(".", "-")


def istiod_release(revision: str) -> str:
    """istiod's Helm release, Deployment and Service: `istiod-<revision>`; `istiod` for the unrevisioned
    control plane of a mesh built before revisions (Istio's charts name them so)."""
    return f"istiod-{revision}" if revision else "istiod"


def firewall_name(mesh: str) -> str:
    return f"meshwright-{mesh}-pods"


def node_tag(mesh: str) -> str:
    return f"meshwright-{mesh}-node"


def remote_secret_name(cluster: str) -> str:
    return f"istio-remote-secret-{cluster}"


def expiry(ttl_seconds: int | None, *, now: float | None = None) -> int | None:
    """Unix time after which a reaper may delete what a run started at `now` creates."""
    return None if ttl_seconds is None else int((time.time() if now is None else now) + ttl_seconds)


def mesh_expiry(found: list[dict[str, str]], ttl_seconds: int | None, *, now: float) -> int | None:
    """The expiry of a mesh whose resources carry the labels `found`: the earliest one there, so that
    a rerun (or a firewall rule made again) never postpones the reaper; now + ttl for a new mesh."""
    if ttl_seconds is None:
        return None
    kept = [int(labels[EXPIRES_LABEL]) for labels in found if labels.get(EXPIRES_LABEL, "").isdigit()]
    return min(kept) if kept else expiry(ttl_seconds, now=now)


def resource_labels(mesh: str, user_labels: dict[str, str], *, expires: int | None) -> dict[str, str]:
    """The labels on every cloud resource of the mesh: the user's, then ours (ours win)."""
    labels = {**user_labels, MESH_LABEL: mesh}
    if expires is not None:
        labels[EXPIRES_LABEL] = str(expires)
    return labels


def slot_name(mesh: str) -> str:
    """The Prefect global concurrency limit that lets one run at a time change or read a mesh."""
    return f"meshwright-mesh-{mesh}"


def artifact_key(mesh: str, kind: str = "") -> str:
    """The key of a mesh's Prefect artifact of `kind` (the cluster table without one): one key per
    mesh and kind, so the UI keeps each report's history. Prefect keys are lowercase, dashes only."""
    return (f"mesh-{mesh}-{kind}" if kind else f"mesh-{mesh}")[:60].lower()


def default_kubeconfig(mesh: str) -> Path:
    return settings().home / mesh / "kubeconfig"
