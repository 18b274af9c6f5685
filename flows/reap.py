"""reap_expired: delete every meshwright resource of a project whose expiry has passed.

Scheduled hourly: the safety net for ephemeral meshes whose teardown never ran (a killed worker,
a cancelled run, a laptop closed mid-test).
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from flows._futures import bounded_runner, raise_failures, resolve
from meshwright.clients import MeshwrightTarget, resolve_target
from meshwright.spec import DEFAULT_TARGET, Target
from tasks.clusters import delete_cluster, find_expired_clusters
from tasks.network import delete_firewall, find_expired_firewalls


@flow(name="reap-expired", task_runner=bounded_runner())
def reap_expired(
    project: str,
    target: Target = DEFAULT_TARGET,
    now: float | None = None,
    connection: MeshwrightTarget | str | None = None,
) -> dict[str, list[str]]:
    """Start deleting expired meshwright clusters and firewall rules of `project`.

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
    failures = {**resolve(deletes)[1], **resolve(rule_deletes)[1]}
    get_run_logger().info(
        "reaped %d cluster(s) and %d firewall rule(s) of %s", len(clusters), len(rules), project
    )
    raise_failures(failures)
    return {"clusters": sorted(c.name for c in clusters), "firewalls": sorted(rules)}
