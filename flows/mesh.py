"""up_mesh: clusters, then per cluster as soon as it is ready: istio-system -> cacerts + base ->
istiod -> east-west gateway; a remote waits only for its own primary's gateway address. Each remote
secret goes in once both of its clusters' control planes are installed, Bookinfo in each cluster once
its mesh side is ready, and the verification (control plane, then traffic) comes last.

The DAG, not stages: every step is submitted at once, as meshwright.dag describes it (the same
description `plan` prints), with futures as arguments and `wait_for`, so each cluster's chain moves
on its own. The root CA is settled while the clusters are created; charts and helm are checked
before anything is created. The firewall and the kubeconfig follow once every cluster is RUNNING,
alongside the Istio chains.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture

from flows._futures import LocalThreadPoolTaskRunner, raise_failures, resolve, submit
from flows._slots import mesh_slot
from flows.provision import Preflight, preflight
from flows.upgrade import upgrade_revisions
from flows.verify import verify_all
from meshwright import dag, istio_values
from meshwright.clients import MeshwrightTarget
from meshwright.dag import StepKey
from meshwright.drift import Observed, diff
from meshwright.models import ChartRef, ClusterAccess, FirewallResult, MeshReport, ProvisionReport
from meshwright.remote_secrets import pairs
from meshwright.spec import MeshSpec, as_spec
from tasks.access import write_kubeconfig
from tasks.bookinfo import deploy_bookinfo
from tasks.clusters import create_cluster, delete_cluster, wait_cluster, wait_deleted
from tasks.istio import (
    expose_on_gateway,
    gateway_address,
    install_release,
    preflight_charts,
    prepare_namespace,
    wait_release_ready,
)
from tasks.network import ensure_firewall
from tasks.observe import observe_mesh
from tasks.remote_secrets import exchange_remote_secrets, prune_remote_secrets
from tasks.report import publish_changes, publish_report
from tasks.trust import ensure_cacerts, ensure_root_ca

Futures = dict[StepKey, PrefectFuture[Any]]
# Prefect runs a submitted task in a pool thread that then waits there for the task's inputs, so a
# pool narrower than the DAG stalls ready chains behind blocked steps (measured with 10 clusters
# and 16 threads: cacerts started 1.6 s after its cluster was RUNNING). Waiting threads cost no API
# calls; the Google API stays bounded by Cloud.api_slots. About 11 steps per cluster, 20 clusters.
MESH_WORKERS = 256
# Joins the flow body makes itself once every cluster is RUNNING (or, for verify, at the end).
IN_BODY = (dag.FIREWALL, dag.KUBECONFIG, dag.VERIFY)


@dataclass(frozen=True)
class _Steps:
    """Submits meshwright.dag's steps: each with the results it takes and the steps it comes after."""

    mesh: MeshSpec
    charts: list[ChartRef]
    target: MeshwrightTarget
    futures: Futures
    leaving: tuple[str, ...] = ()  # clusters of the mesh the spec no longer names (pruned)

    @functools.cached_property
    def readers(self) -> dict[str, list[str]]:
        return dag.readers(self.mesh)

    def submit_all(self) -> Futures:
        for step in dag.steps(self.mesh):
            if step.key not in self.futures and step.key.kind not in IN_BODY:
                self.futures[step.key] = self.submit(step.key, [self.futures[k] for k in step.after])
        return self.futures

    def submit(self, key: StepKey, after: list[PrefectFuture[Any]]) -> PrefectFuture[Any]:
        mesh, target, ready = self.mesh, self.target, self._ready(key.cluster)
        match key.kind:
            case dag.NAMESPACE:
                return submit(prepare_namespace, mesh, ready, target=target, after=after)
            case dag.CACERTS:
                root = self.futures[StepKey(dag.ROOT)]
                return submit(ensure_cacerts, mesh, ready, root, target=target, after=after)
            case dag.INSTALL:
                pilot = self._pilot(key)
                return submit(
                    install_release, mesh, ready, key.release, self.charts,
                    target=target, remote_pilot_address=pilot, after=after,
                )  # fmt: skip
            case dag.READY:
                return submit(wait_release_ready, mesh, ready, key.release, target=target, after=after)
            case dag.ADDRESS:
                return submit(gateway_address, ready, target=target, after=after)
            case dag.EXPOSE:
                return submit(expose_on_gateway, mesh, ready, target=target, after=after)
            case dag.SECRET:
                readers = [self._ready(p) for p in self.readers[key.cluster or ""]]
                return submit(exchange_remote_secrets, ready, readers, target=target, after=after)
            case dag.PRUNE_SECRETS:
                keep = [source for source, primary in pairs(mesh) if primary == key.cluster]
                ours = sorted({c.name for c in mesh.clusters} | set(self.leaving))
                return submit(prune_remote_secrets, ready, keep, ours, target=target, after=after)
            case dag.BOOKINFO:
                return submit(deploy_bookinfo, mesh, ready, self.charts, target=target, after=after)
        raise ValueError(f"up_mesh has no task for step {key}")

    def _ready(self, cluster: str | None) -> PrefectFuture[Any]:
        return self.futures[StepKey(dag.WAIT, cluster)]

    def _pilot(self, key: StepKey) -> PrefectFuture[Any] | None:
        """A remote's istiod dials its primary's east-west gateway address."""
        primary = self.mesh.cluster(key.cluster or "").primary
        return self.futures[StepKey(dag.ADDRESS, primary)] if primary and key.release == "istiod" else None


@flow(name="up-mesh", task_runner=LocalThreadPoolTaskRunner(max_workers=MESH_WORKERS), log_prints=False)  # type: ignore[arg-type]
def up_mesh(
    spec: MeshSpec | str,
    kubeconfig: str | None = None,
    connection: MeshwrightTarget | str | None = None,
    force: bool = False,
    prune: bool = False,
) -> MeshReport:
    """Create the mesh's clusters and install Istio on each as soon as it is ready (a shared root
    CA, cacerts, istio-base, istiod and the east-west gateways, wired per the spec's topology),
    exchange the remote secrets, deploy Bookinfo and prove that the mesh works.

    Args:
        spec: the mesh spec itself (the UI's form) or the path of its YAML file.
        kubeconfig: where to write the kubeconfig; default `.meshwright/<mesh>/kubeconfig`.
        connection: a MeshwrightTarget block or the name of a saved one; default: the spec's
            target in its usual place.
        force: overwrite a kubeconfig that holds another mesh's contexts.
        prune: delete the mesh's clusters that the spec no longer names (after their remote
            secrets and firewall sources are gone); without it such clusters stop the run first.
    """
    mesh = as_spec(spec)
    with mesh_slot(mesh.name):  # before preflight's tasks: see flows._slots
        pre = preflight(mesh, kubeconfig, connection, force=force, prune=prune)
        return _up(pre, force=force, prune=prune)


def _up(pre: Preflight, *, force: bool, prune: bool) -> MeshReport:
    mesh, target = pre.mesh, pre.target
    charts = preflight_charts(mesh, target=target)
    observed = observe_mesh(mesh, target=target)
    publish_changes(diff(mesh, observed), prune=prune)
    old = _old_revision(mesh, observed)
    started: Futures = {StepKey(dag.ROOT): submit(ensure_root_ca, mesh)}
    for c in mesh.clusters:
        create = submit(create_cluster, mesh, c.name, target=target, expires=pre.expires)
        started[StepKey(dag.CREATE, c.name)] = create
        started[StepKey(dag.WAIT, c.name)] = submit(wait_cluster, mesh, create, target=target)
    futures = _Steps(mesh, charts, target, started, tuple(c.name for c in pre.leaving)).submit_all()
    created, failures = resolve({k: f for k, f in futures.items() if k.kind == dag.CREATE})
    waited = {k: f for k, f in futures.items() if k.kind == dag.WAIT}
    ready, wait_failures = resolve(
        waited, skip={StepKey(dag.WAIT, k.cluster): e for k, e in failures.items()}
    )
    failures |= wait_failures
    firewall, path = None, pre.kubeconfig
    if not failures:
        clusters = [ready[StepKey(dag.WAIT, c.name)] for c in mesh.clusters]
        firewall = ensure_firewall(mesh, [c.pod_cidr for c in clusters], target=target, expires=pre.expires)
        path = write_kubeconfig(mesh, clusters, path, target=target, force=force)
    results, step_failures = resolve(
        {k: f for k, f in futures.items() if k.kind not in (dag.CREATE, dag.WAIT)}
    )
    raise_failures({**failures, **step_failures})
    _delete_leaving(pre)  # their secrets are out of every primary and their ranges out of the rule
    assert firewall is not None
    report = _report(pre, list(created.values()), ready, firewall, path, charts, results)
    published = publish_report.submit(report.provision)  # alongside the verification
    access = {k.cluster: a for k, a in ready.items() if k.cluster}
    try:
        if old is None:
            report.verification = verify_all(mesh, dict(access), target=target)
        else:
            report.verification, report.upgrade = upgrade_revisions(
                mesh, access, charts, report.gateways, old, target=target, started=pre.started
            )
    finally:
        published.wait()  # the cluster table is published whatever the verification finds
    raise_failures(resolve({"publish_report": published})[1])
    report.finished = time.time()
    return report


def _old_revision(mesh: MeshSpec, observed: Observed) -> str | None:
    """The istiod revision the mesh's primaries run that the spec's version replaces; None when none
    does (a new mesh, or one on the spec's revision already)."""
    new = istio_values.revision(mesh)
    found = {
        rev
        for c in mesh.primaries
        if (seen := observed.cluster(c.name)) is not None
        for rev in istio_values.istiod_revisions(seen.releases)
        if rev != new
    }
    return min(found) if found else None


def _delete_leaving(pre: Preflight) -> None:
    """The clusters that left the spec (only there with prune), deleted in parallel."""
    target, project = pre.target, pre.mesh.project
    started = {c.name: delete_cluster.submit(target, project, c.location, c.name) for c in pre.leaving}
    raise_failures(resolve(started)[1])
    gone = {c.name: wait_deleted.submit(target, project, c.location, c.name) for c in pre.leaving}
    raise_failures(resolve(gone)[1])


def _report(
    pre: Preflight,
    created: list[Any],
    ready: dict[StepKey, ClusterAccess],
    firewall: FirewallResult,
    kubeconfig: str,
    charts: list[ChartRef],
    results: dict[StepKey, Any],
) -> MeshReport:
    mesh = pre.mesh
    clusters = [ready[StepKey(dag.WAIT, c.name)] for c in mesh.clusters]

    def of(kind: str) -> dict[str, Any]:
        return {str(k.cluster): v for k, v in results.items() if k.kind == kind}

    cacerts, releases = (
        list(of(dag.CACERTS).values()),
        [v for k, v in results.items() if k.kind == dag.INSTALL],
    )
    provision = ProvisionReport.of(
        mesh,
        created=created,
        clusters=clusters,
        firewall=firewall,
        kubeconfig=kubeconfig,
        started=pre.started,
    )
    return MeshReport(
        provision=provision,
        root=results[StepKey(dag.ROOT)],
        charts=charts,
        cacerts=cacerts,
        releases=releases,
        gateways=of(dag.ADDRESS),
        exposed=of(dag.EXPOSE),
        remote_secrets=[r for k, v in results.items() if k.kind == dag.SECRET for r in v],
        bookinfo=list(of(dag.BOOKINFO).values()),
        steps=provision.steps + [c.timing for c in cacerts] + [r.timing for r in releases if r.timing],
        started=pre.started,
        finished=time.time(),
    )
