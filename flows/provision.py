"""provision_mesh: validate -> create all clusters in parallel -> wait for them in parallel ->
firewall -> kubeconfig -> report."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prefect import flow

from flows._futures import bounded_runner, raise_failures, resolve, submit
from flows._slots import mesh_slot
from meshwright import naming
from meshwright.clients import MeshwrightTarget, resolve_target
from meshwright.errors import Refused
from meshwright.models import ClusterAccess, ClusterRef, CreateResult, ProvisionReport
from meshwright.spec import MeshSpec, as_spec
from meshwright.trust import check_brought_root
from tasks.access import check_kubeconfig, write_kubeconfig
from tasks.clusters import create_cluster, find_mesh_clusters, wait_cluster
from tasks.network import check_network, ensure_firewall
from tasks.project import check_quotas, check_service_accounts
from tasks.report import publish_report


@dataclass(frozen=True)
class Preflight:
    """What a building flow settles before anything is created."""

    mesh: MeshSpec
    target: MeshwrightTarget
    kubeconfig: str  # where it will be written, checked not to hold another mesh's contexts
    expires: int | None  # the expiry label of everything this run creates
    started: float
    leaving: list[ClusterRef]  # the mesh's clusters the spec no longer names (prune deletes them)


def preflight(
    spec: MeshSpec | str,
    kubeconfig: str | None,
    connection: MeshwrightTarget | str | None,
    *,
    force: bool,
    prune: bool = False,
) -> Preflight:
    """The spec, the files it names, the target, the kubeconfig path, the VPC network and its mode,
    the nodes' service accounts and the regional quota the new clusters need, checked before anything
    is created (provision_mesh and up_mesh both start so), and the mesh's expiry: the one its clusters
    already carry, when it exists. The first call to each API also tells an API the project has not
    enabled, with the `gcloud services enable` line."""
    started = time.time()
    mesh = as_spec(spec)
    check_brought_root(mesh)
    target = resolve_target(mesh.target, connection)
    path = check_kubeconfig(mesh, kubeconfig or str(naming.default_kubeconfig(mesh.name)), force=force)
    check_network(mesh, target=target)
    existing = find_mesh_clusters(target, mesh.project, mesh.name)
    leaving = [c for c in existing if c.name not in {k.name for k in mesh.clusters}]
    if leaving and not prune:
        names = ", ".join(sorted(c.name for c in leaving))
        raise Refused(
            f"mesh {mesh.name} has cluster(s) the spec no longer names: {names}; nothing was changed. "
            "Deleting them needs `meshwright up --prune` (the flow's `prune` parameter)",
            step="preflight",
        )
    check_service_accounts(mesh, target=target)
    check_quotas(mesh, target=target, existing=[c.name for c in existing])
    expires = naming.mesh_expiry([(c.labels, c.created) for c in existing], mesh.ttl_seconds, now=started)
    return Preflight(mesh, target, path, expires, started, leaving)


@flow(name="provision-mesh", task_runner=bounded_runner(), log_prints=False)
def provision_mesh(
    spec: MeshSpec | str,
    kubeconfig: str | None = None,
    connection: MeshwrightTarget | str | None = None,
    force: bool = False,
) -> ProvisionReport:
    """Create the mesh's clusters in parallel, open the firewall between their pod ranges and write
    a kubeconfig with one context per cluster.

    Args:
        spec: the mesh spec itself (the UI's form) or the path of its YAML file.
        kubeconfig: where to write the kubeconfig; default `.meshwright/<mesh>/kubeconfig`.
        connection: a MeshwrightTarget block or the name of a saved one; default: the spec's
            target in its usual place (the sandbox of $MESHWRIGHT_SANDBOX_STATE, or GKE with
            application default credentials).
        force: overwrite a kubeconfig that holds another mesh's contexts.
    """
    mesh = as_spec(spec)
    with mesh_slot(mesh.name):  # before preflight's tasks: see flows._slots
        pre = preflight(mesh, kubeconfig, connection, force=force)
        return _provision(pre, force=force)


def _provision(pre: Preflight, *, force: bool) -> ProvisionReport:
    mesh, target = pre.mesh, pre.target
    created, clusters = _create_and_wait(mesh, target, pre.expires)
    firewall = ensure_firewall(mesh, [c.pod_cidr for c in clusters], target=target, expires=pre.expires)
    path = write_kubeconfig(mesh, clusters, pre.kubeconfig, target=target, force=force)
    report = ProvisionReport.of(
        mesh, created=created, clusters=clusters, firewall=firewall, kubeconfig=path, started=pre.started
    )
    publish_report(report)
    return report


def _create_and_wait(
    mesh: MeshSpec, target: MeshwrightTarget, expires: int | None
) -> tuple[list[CreateResult], list[ClusterAccess]]:
    """Every cluster created and waited for in parallel; every failure reported, none left unresolved."""
    creates = {
        c.name: submit(create_cluster, mesh, c.name, target=target, expires=expires) for c in mesh.clusters
    }
    # A future as argument: the wait starts as soon as its own create is done.
    waits = {name: submit(wait_cluster, mesh, future, target=target) for name, future in creates.items()}
    created, create_failures = resolve(creates)
    ready, wait_failures = resolve(waits, skip=create_failures)
    raise_failures({**create_failures, **wait_failures})
    return list(created.values()), [ready[c.name] for c in mesh.clusters]
