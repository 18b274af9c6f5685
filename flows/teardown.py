"""teardown_mesh: find everything labelled with the mesh, uninstall its gateways (so that GKE deletes
their load balancers, which deleting a cluster does not guarantee), delete the clusters in parallel,
then the firewall rule. Safe to run twice and after a crashed run: it reads the world, not a record of it."""

from __future__ import annotations

import time

from prefect import flow

from flows._futures import bounded_runner, raise_failures, resolve
from flows._slots import mesh_slot
from meshwright import naming
from meshwright.clients import MeshwrightTarget, resolve_target
from meshwright.models import TeardownReport
from meshwright.spec import MeshSpec, as_spec
from tasks.access import remove_kubeconfig
from tasks.clusters import delete_cluster, find_mesh_clusters, wait_deleted
from tasks.gateways import uninstall_gateways
from tasks.network import delete_mesh_firewalls
from tasks.trust import forget_root_ca


@flow(name="teardown-mesh", task_runner=bounded_runner())
def teardown_mesh(
    spec: MeshSpec | str,
    wait: bool = True,
    kubeconfig: str | None = None,
    connection: MeshwrightTarget | str | None = None,
) -> TeardownReport:
    """Delete every cluster labelled with the mesh (its gateways' load balancers first), the mesh's
    firewall rule and its stored root CA (unless the spec says `istio.keep_root`).

    Args:
        spec: the mesh spec itself (the UI's form) or the path of its YAML file.
        wait: return only when the clusters are gone (like `terraform destroy`).
        kubeconfig: the kubeconfig `provision_mesh` wrote, removed at the end (if it is this mesh's).
        connection: a MeshwrightTarget block or the name of a saved one; default: the spec's
            target in its usual place.
    """
    started = time.time()
    mesh = as_spec(spec)
    with mesh_slot(mesh.name):
        return _teardown(mesh, resolve_target(mesh.target, connection), wait, kubeconfig, started)


def _teardown(
    mesh: MeshSpec, target: MeshwrightTarget, wait: bool, kubeconfig: str | None, started: float
) -> TeardownReport:
    refs = find_mesh_clusters(target, mesh.project, mesh.name)
    # A cluster whose gateways could not be uninstalled is deleted all the same (the failure is
    # reported; the reaper deletes its load balancers once the cluster is gone).
    released, failures = resolve({r.name: uninstall_gateways.submit(target, mesh.project, r) for r in refs})
    deletes = {r.name: delete_cluster.submit(target, mesh.project, r.location, r.name) for r in refs}
    failures.update(resolve(deletes)[1])
    if wait:
        gone = {
            r.name: wait_deleted.submit(target, mesh.project, r.location, r.name)
            for r in refs
            if r.name not in failures
        }
        failures.update(resolve(gone)[1])
    firewall = delete_mesh_firewalls(target, mesh.project, mesh.name)
    raise_failures(failures)
    root = forget_root_ca(mesh)  # its clusters are going: no new intermediate will be signed for it
    if wait:
        remove_kubeconfig(mesh, kubeconfig or str(naming.default_kubeconfig(mesh.name)))
    return TeardownReport(
        mesh=mesh.name,
        deleted_clusters=sorted(r.name for r in refs),
        firewall=firewall,
        load_balancers=sorted(name for names in released.values() for name in names),
        root=root,
        waited=wait,
        seconds=time.time() - started,
    )
