"""What exists right now, read straight from the cloud (no Prefect, no cache).

The tasks read the world through these too, so `status` and the flows see it the same way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from google.cloud import compute_v1, container_v1

from meshwright import clients, helm, naming
from meshwright.errors import MeshwrightError, NotFound
from meshwright.naming import MESH_LABEL
from meshwright.spec import MeshSpec


def list_clusters(target: clients.MeshwrightTarget, project: str, *, step: str) -> list[container_v1.Cluster]:
    """Every cluster of the project, in every location."""
    cloud = clients.cloud(target)
    with cloud.call(cluster=None, step=step):
        return list(cloud.container.list_clusters(parent=f"projects/{project}/locations/-").clusters)


def mesh_clusters(
    target: clients.MeshwrightTarget, project: str, mesh: str, *, step: str
) -> list[container_v1.Cluster]:
    """The clusters labelled as this mesh's, wherever they are."""
    return [c for c in list_clusters(target, project, step=step) if c.resource_labels.get(MESH_LABEL) == mesh]


def get_firewall(
    target: clients.MeshwrightTarget, project: str, name: str, *, step: str
) -> compute_v1.Firewall | None:
    """A firewall rule, or None where there is none."""
    cloud = clients.cloud(target)
    try:
        with cloud.call(cluster=None, step=step):
            return cloud.firewalls.get(project=project, firewall=name)
    except NotFound:
        return None


def mesh_firewalls(
    target: clients.MeshwrightTarget, project: str, mesh: str, *, step: str
) -> list[compute_v1.Firewall]:
    """The mesh's firewall rules (one, or several when its pod ranges need them), the first first."""
    names = naming.firewall_names(mesh)
    cloud = clients.cloud(target)
    with cloud.call(cluster=None, step=step):
        found = {r.name: r for r in cloud.firewalls.list(project=project) if r.name in names}
    return [found[n] for n in names if n in found]


def get_network(
    target: clients.MeshwrightTarget, project: str, name: str, *, step: str
) -> compute_v1.Network | None:
    """A VPC network, or None where there is none."""
    cloud = clients.cloud(target)
    try:
        with cloud.call(cluster=None, step=step):
            return cloud.networks.get(project=project, network=name)
    except NotFound:
        return None


def custom_mode(network: compute_v1.Network) -> bool:
    """A network whose subnets are made by hand (autoCreateSubnetworks false): GKE needs to be told one."""
    return not network.auto_create_subnetworks


def mesh_status(spec: MeshSpec, target: clients.MeshwrightTarget) -> dict[str, Any]:
    """What exists of the mesh of `spec` on `target`: its clusters with their Helm releases, missing
    clusters, its firewall rule."""
    found = mesh_clusters(target, spec.project, spec.name, step="status")
    with ThreadPoolExecutor(max_workers=8) as pool:
        releases = list(pool.map(lambda c: _releases(target, c), found))
    clusters = [
        {
            "name": c.name,
            "location": c.location,
            "status": c.status.name,
            "endpoint": c.endpoint,
            "pod_cidr": c.cluster_ipv4_cidr,
            "releases": r,
        }
        for c, r in zip(found, releases, strict=True)
    ]
    rules = mesh_firewalls(target, spec.project, spec.name, step="status")
    firewall = (
        {
            "name": ", ".join(r.name for r in rules),
            "source_ranges": [s for r in rules for s in r.source_ranges],
        }
        if rules
        else None
    )
    missing = sorted({c.name for c in spec.clusters} - {c["name"] for c in clusters})
    return {
        "mesh": spec.name,
        "target": spec.target.value,
        "project": spec.project,
        "clusters": clusters,
        "missing": missing,
        "firewall": firewall,
    }


def _releases(target: clients.MeshwrightTarget, c: container_v1.Cluster) -> list[dict[str, Any]] | str:
    """`helm list` in istio-system of a RUNNING cluster; a failure is shown, not raised."""
    if c.status != container_v1.Cluster.Status.RUNNING:
        return []
    ca = c.master_auth.cluster_ca_certificate
    try:
        with clients.cloud(target).helm(c.name, c.endpoint, ca, step="status") as command:
            return helm.list_releases(command, naming.ISTIO_NAMESPACE)
    except MeshwrightError as e:
        return f"releases unknown: {e}"
