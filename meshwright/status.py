"""What exists of a mesh right now, read straight from the cloud (no Prefect, no cache)."""

from __future__ import annotations

from typing import Any

from meshwright import clients, naming
from meshwright.errors import NotFound
from meshwright.spec import MESH_LABEL, MeshSpec


def mesh_status(spec: MeshSpec) -> dict[str, Any]:
    cloud = clients.cloud(spec.target)
    with cloud.call(cluster=None, step="status"):
        found = cloud.container.list_clusters(parent=f"projects/{spec.project}/locations/-").clusters
    clusters = [
        {
            "name": c.name,
            "location": c.location,
            "status": c.status.name,
            "endpoint": c.endpoint,
            "pod_cidr": c.cluster_ipv4_cidr,
        }
        for c in found
        if c.resource_labels.get(MESH_LABEL) == spec.name
    ]
    firewall: dict[str, Any] | None
    try:
        with cloud.call(cluster=None, step="status"):
            rule = cloud.firewalls.get(project=spec.project, firewall=naming.firewall_name(spec.name))
        firewall = {"name": rule.name, "source_ranges": list(rule.source_ranges)}
    except NotFound:
        firewall = None
    missing = sorted({c.name for c in spec.clusters} - {c["name"] for c in clusters})
    return {
        "mesh": spec.name,
        "target": spec.target.value,
        "project": spec.project,
        "clusters": clusters,
        "missing": missing,
        "firewall": firewall,
    }
