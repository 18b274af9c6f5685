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
KEEP_ROOT_LABEL = "meshwright-keep-root"
TTL_LABEL = "meshwright-ttl"

# -- the firewall rule between the pod ranges ------------------------------------------------
FIREWALL_PRIORITY = 900
FIREWALL_PROTOCOLS = ("tcp", "udp", "icmp", "esp", "ah", "sctp")
# Compute takes at most 5000 source ranges in one VPC firewall rule (cloud.google.com/vpc/docs/quota,
# "per firewall rule"; quoted in crowdsecurity/cs-cloud-firewall-bouncer#27): a mesh whose pod
# ranges are more has several rules, each with the same target, protocols and description.
FIREWALL_SOURCE_RANGES_MAX = 5000
FIREWALL_RULES_MAX = 10  # 50,000 pod ranges; GKE allows 100 clusters per zone and project

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
# The releases whose Services are of type LoadBalancer (named after the release, in ISTIO_NAMESPACE).
GATEWAY_RELEASES = (EASTWEST_RELEASE, INGRESS_RELEASE)

# -- what GKE's service controller makes for a LoadBalancer Service ----------------------------
# kubernetes/cloud-provider-gcp providers/gce/gce_loadbalancer_external.go: the forwarding rule,
# target pool and address are named `load_balancer_name`, the firewall rule `k8s-fw-` + that name;
# both describe the Service as JSON, `{"kubernetes.io/service-name":"ns/name", ...}`.
LB_FIREWALL_PREFIX = "k8s-fw-"
LB_SERVICE_KEY = "kubernetes.io/service-name"

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


def firewall_name(mesh: str, index: int = 0) -> str:
    """The mesh's firewall rule `index`: `meshwright-<mesh>-pods`, then `-pod1` .. `-pod9` when its
    pod ranges take more than one rule. As long as the first, so every name fits a mesh name of
    spec.MESH_NAME_MAX (Compute names are 63 characters at most)."""
    if not 0 <= index < FIREWALL_RULES_MAX:
        raise ValueError(f"a mesh has firewall rules 0 to {FIREWALL_RULES_MAX - 1}, not {index}")
    return f"meshwright-{mesh}-pods" if index == 0 else f"meshwright-{mesh}-pod{index}"


def firewall_names(mesh: str) -> list[str]:
    """Every name a firewall rule of the mesh may have, the first first."""
    return [firewall_name(mesh, i) for i in range(FIREWALL_RULES_MAX)]


def node_tag(mesh: str) -> str:
    return f"meshwright-{mesh}-node"


def load_balancer_name(service_uid: str) -> str:
    """k8s.io/cloud-provider `DefaultLoadBalancerName`: "a" + the Service's UID without dashes, cut to 32."""
    return ("a" + service_uid.replace("-", ""))[:32]


def lb_firewall_name(lb_name: str) -> str:
    return LB_FIREWALL_PREFIX + lb_name


def region_of(location: str) -> str:
    """The region of a zone (`us-central1-a` -> `us-central1`); a region is its own."""
    head, _, tail = location.rpartition("-")
    return head if len(tail) == 1 else location


def remote_secret_name(cluster: str) -> str:
    return f"istio-remote-secret-{cluster}"


def expiry(ttl_seconds: int | None, *, now: float | None = None) -> int | None:
    """Unix time after which a reaper may delete what a run started at `now` creates."""
    return None if ttl_seconds is None else int((time.time() if now is None else now) + ttl_seconds)


def mesh_expiry(
    existing: list[tuple[dict[str, str], float | None]], ttl_seconds: int | None, *, now: float
) -> int | None:
    """The expiry of a mesh whose clusters carry (labels, creation time) `existing`: the one they
    carry while the spec's ttl is the one they were labelled with, so a rerun (or a firewall rule
    made again) never postpones the reaper; the first creation plus the new ttl when the spec's ttl
    changed; now + ttl for a new mesh."""
    if ttl_seconds is None:
        return None
    kept = [
        int(labels[EXPIRES_LABEL])
        for labels, _ in existing
        if labels.get(EXPIRES_LABEL, "").isdigit() and labels.get(TTL_LABEL) == str(ttl_seconds)
    ]
    if kept:
        return min(kept)
    created = [when for _, when in existing if when]
    return int((min(created) if created else now) + ttl_seconds)


def resource_labels(
    mesh: str,
    user_labels: dict[str, str],
    *,
    expires: int | None,
    ttl_seconds: int | None = None,
    keep_root: bool = False,
) -> dict[str, str]:
    """The labels on every cloud resource of the mesh: the user's, then ours (ours win). The reaper,
    which has no spec, reads from them whether the mesh's root CA outlives it; a rerun reads the ttl
    the expiry was made from."""
    labels = {**user_labels, MESH_LABEL: mesh}
    if expires is not None:
        labels[EXPIRES_LABEL] = str(expires)
        if ttl_seconds is not None:
            labels[TTL_LABEL] = str(ttl_seconds)
    if keep_root:
        labels[KEEP_ROOT_LABEL] = "true"
    return labels


def slot_name(mesh: str) -> str:
    """The Prefect global concurrency limit that lets one run at a time change or read a mesh."""
    return f"meshwright-mesh-{mesh}"


# The task run whose persisted result is a verify run's report, failed or not (the CLI reads it).
KEPT_REPORT = "keep_report"


def artifact_key(mesh: str, kind: str = "") -> str:
    """The key of a mesh's Prefect artifact of `kind` (the cluster table without one): one key per
    mesh and kind, so the UI keeps each report's history. Prefect keys are lowercase, dashes only."""
    return (f"mesh-{mesh}-{kind}" if kind else f"mesh-{mesh}")[:60].lower()


def default_kubeconfig(mesh: str) -> Path:
    return settings().home / mesh / "kubeconfig"
