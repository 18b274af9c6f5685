"""reap_expired: delete every meshwright resource of a project whose expiry has passed, and the
load balancers of meshwright's gateways whose cluster is gone.

Scheduled hourly: the safety net for ephemeral meshes whose teardown never ran (a killed worker,
a cancelled run, a laptop closed mid-test).
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from flows._futures import bounded_runner, raise_failures, resolve
from meshwright.clients import MeshwrightTarget, resolve_target
from meshwright.models import ClusterRef
from meshwright.naming import KEEP_ROOT_LABEL, MESH_LABEL
from meshwright.spec import DEFAULT_TARGET, Target
from tasks.clusters import delete_cluster, find_expired_clusters, find_mesh_clusters
from tasks.network import (
    delete_firewall,
    delete_load_balancer,
    find_expired_firewalls,
    find_orphaned_load_balancers,
)
from tasks.trust import forget_mesh_root


@flow(name="reap-expired", task_runner=bounded_runner())
def reap_expired(
    project: str,
    target: Target = DEFAULT_TARGET,
    now: float | None = None,
    connection: MeshwrightTarget | str | None = None,
) -> dict[str, list[str]]:
    """Start deleting expired meshwright clusters and firewall rules of `project`, delete the load
    balancers GKE left behind for gateways of clusters that no longer exist, and the stored root CA
    of each mesh whose clusters all went (unless its clusters say it keeps it).

    Args:
        project: the GCP project to sweep.
        target: `gke`, or `sandbox` for the local sandbox.
        now: the time to judge expiry by (default: now).
        connection: a MeshwrightTarget block (or a saved one's name) for `target`; default: its usual place.
    """
    moment, where = time.time() if now is None else now, resolve_target(target, connection)
    clusters = find_expired_clusters(where, project, now=moment)
    deletes = {c.name: delete_cluster.submit(where, project, c.location, c.name) for c in clusters}
    rules = find_expired_firewalls(where, project, now=moment)
    rule_deletes = {r: delete_firewall.submit(where, project, r) for r in rules}
    # What a cluster deleted with its gateways left behind (a cluster deleted just now: next run).
    leftovers = find_orphaned_load_balancers(where, project)
    lb_deletes = {lb.name: delete_load_balancer.submit(where, project, lb) for lb in leftovers}
    failures = {**resolve(deletes)[1], **resolve(rule_deletes)[1], **resolve(lb_deletes)[1]}
    get_run_logger().info(
        "reaped %d cluster(s), %d firewall rule(s) and %d left-over load balancer(s) of %s",
        len(clusters),
        len(rules),
        len(leftovers),
        project,
    )
    raise_failures(failures)  # a mesh whose clusters did not all go keeps its root
    roots = [m for m in _gone_meshes(where, project, clusters) if forget_mesh_root(m)]
    return {
        "clusters": sorted(c.name for c in clusters),
        "firewalls": sorted(rules),
        "load_balancers": sorted(lb.name for lb in leftovers),
        "roots": sorted(roots),
    }


def _gone_meshes(where: MeshwrightTarget, project: str, reaped: list[ClusterRef]) -> list[str]:
    """The meshes all of whose clusters this run deleted, unless they keep their root CA."""
    meshes = {c.labels[MESH_LABEL] for c in reaped if MESH_LABEL in c.labels}
    keeping = {c.labels[MESH_LABEL] for c in reaped if c.labels.get(KEEP_ROOT_LABEL) == "true"}
    names = {c.name for c in reaped}
    return sorted(
        m for m in meshes - keeping if all(c.name in names for c in find_mesh_clusters(where, project, m))
    )
