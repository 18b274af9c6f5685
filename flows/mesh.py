"""up_mesh: clusters, then per cluster as soon as it is ready: istio-system -> cacerts + base ->
istiod -> east-west gateway; a remote waits only for its own primary's gateway address. Each remote
secret goes in once both of its clusters' control planes are installed, Bookinfo in each cluster once
its mesh side is ready, and the verification (control plane, then traffic) comes last.

The DAG, not stages: every step is submitted at once with futures as arguments (or `wait_for`),
so each cluster's chain moves on its own. The root CA is settled while the clusters are created;
charts and helm are checked before anything is created. The firewall and the kubeconfig follow
once every cluster is RUNNING, alongside the Istio chains.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture

from flows._futures import LocalThreadPoolTaskRunner, raise_failures, resolve
from flows.verify import verify_all
from meshwright import istio_values, naming
from meshwright.clients import MeshwrightTarget, resolve_target
from meshwright.models import (
    ChartRef,
    ClusterAccess,
    FirewallResult,
    MeshReport,
    ProvisionReport,
    ReleaseResult,
    RootInfo,
)
from meshwright.remote_secrets import pairs
from meshwright.spec import ClusterSpec, MeshSpec, as_spec
from tasks.access import check_kubeconfig, write_kubeconfig
from tasks.bookinfo import deploy_bookinfo
from tasks.clusters import create_cluster, wait_cluster
from tasks.istio import (
    expose_on_gateway,
    gateway_address,
    install_release,
    preflight_charts,
    prepare_namespace,
    wait_release_ready,
)
from tasks.network import check_network, ensure_firewall
from tasks.remote_secrets import exchange_remote_secret
from tasks.report import publish_report
from tasks.trust import ensure_cacerts, ensure_root_ca

Futures = dict[str, PrefectFuture[Any]]
# Prefect runs a submitted task in a pool thread that then waits there for the task's inputs, so a
# pool narrower than the DAG stalls ready chains behind blocked steps (measured with 10 clusters
# and 16 threads: cacerts started 1.6 s after its cluster was RUNNING). Waiting threads cost no API
# calls; the Google API stays bounded by Cloud.api_slots. About 11 steps per cluster, 20 clusters.
MESH_WORKERS = 256


def _chain(
    spec: MeshSpec,
    c: ClusterSpec,
    ready: PrefectFuture[ClusterAccess],
    root: PrefectFuture[RootInfo],
    charts: list[ChartRef],
    *,
    target: MeshwrightTarget,
    primary: Futures | None,
) -> Futures:
    """One cluster's Istio steps, each waiting only for what it needs.

    A remote installs after its primary's control plane, as Istio's procedure has it: its base once
    the primary's istiod is installed (that costs the remote nothing: its istiod needs the primary's
    gateway address, which comes later), its istiod once that gateway has an address.
    """
    primary_address = primary["address"] if primary else None
    ns = prepare_namespace.submit(spec, ready, target=target)  # type: ignore[call-overload]
    cacerts = ensure_cacerts.submit(spec, ready, root, target=target, wait_for=[ns])  # type: ignore[call-overload]
    after_primary = [primary["istiod"]] if primary else []
    base = install_release.submit(  # type: ignore[call-overload]
        spec, ready, naming.BASE_RELEASE, charts, target=target, wait_for=[ns, *after_primary]
    )
    istiod = install_release.submit(  # type: ignore[call-overload]
        spec, ready, naming.ISTIOD_RELEASE, charts,
        target=target, remote_pilot_address=primary_address, wait_for=[base, cacerts],
    )  # fmt: skip
    istiod_ready = wait_release_ready.submit(  # type: ignore[call-overload]
        spec, ready, naming.ISTIOD_RELEASE, target=target, wait_for=[istiod]
    )
    steps: Futures = {"namespace": ns, "cacerts": cacerts, "base": base, "istiod": istiod}
    steps["istiod_ready"] = istiod_ready
    if istio_values.needs_eastwest(spec, c):
        steps |= _gateway(spec, c, ready, charts, after=istiod_ready, target=target)
    return steps


def _gateway(
    spec: MeshSpec,
    c: ClusterSpec,
    ready: PrefectFuture[ClusterAccess],
    charts: list[ChartRef],
    *,
    after: PrefectFuture[bool],
    target: MeshwrightTarget,
) -> Futures:
    """The east-west gateway: its pods are injected by istiod, so it goes in once istiod is up; its
    address and the Istio objects on it need only the Service, not the pods."""
    gateway = install_release.submit(  # type: ignore[call-overload]
        spec, ready, naming.EASTWEST_RELEASE, charts, target=target, wait_for=[after]
    )
    steps: Futures = {"gateway": gateway}
    steps["gateway_ready"] = wait_release_ready.submit(  # type: ignore[call-overload]
        spec, ready, naming.EASTWEST_RELEASE, target=target, wait_for=[gateway]
    )
    # Every east-west gateway needs its address: remotes dial their primary's, other networks all.
    steps["address"] = gateway_address.submit(ready, target=target, wait_for=[gateway])  # type: ignore[call-overload]
    if istio_values.exposures(spec, c):
        steps["expose"] = expose_on_gateway.submit(spec, ready, target=target, wait_for=[gateway])  # type: ignore[call-overload]
    return steps


def _istio(
    spec: MeshSpec,
    waits: Mapping[str, PrefectFuture[ClusterAccess]],
    root: PrefectFuture[RootInfo],
    charts: list[ChartRef],
    *,
    target: MeshwrightTarget,
) -> dict[str, Futures]:
    """Every cluster's chain; primaries first, so a remote can take its primary's address future."""
    chains: dict[str, Futures] = {}
    for c in spec.primaries + spec.remotes:
        primary = chains[c.primary] if c.primary else None
        chains[c.name] = _chain(spec, c, waits[c.name], root, charts, target=target, primary=primary)
    return chains


def _remote_secrets(
    spec: MeshSpec,
    waits: Mapping[str, PrefectFuture[ClusterAccess]],
    chains: Mapping[str, Futures],
    *,
    target: MeshwrightTarget,
) -> Futures:
    """Each pair once both control planes are installed: the source's reader account comes with its
    base chart and its ClusterRole with its istiod chart; the primary's istiod reads the secret."""
    return {
        f"{source}->{primary}": exchange_remote_secret.submit(  # type: ignore[call-overload]
            waits[source],
            waits[primary],
            target=target,
            wait_for=[chains[source]["istiod"], chains[primary]["istiod"]],
        )
        for source, primary in pairs(spec)
    }


def _bookinfo(
    spec: MeshSpec,
    waits: Mapping[str, PrefectFuture[ClusterAccess]],
    charts: list[ChartRef],
    chains: Mapping[str, Futures],
    secrets: Futures,
    *,
    target: MeshwrightTarget,
) -> Futures:
    """Bookinfo in each cluster once its mesh side is ready: its own Istio chain, its primary's (a
    remote's pods are injected by the primary's istiod through the east-west gateway) and the remote
    secrets it takes part in (a primary learns the endpoints of the clusters it reads)."""
    if spec.bookinfo is None:
        return {}
    deployed: Futures = {}
    for c in spec.clusters:
        after = [*chains[c.name].values(), *(chains[c.primary].values() if c.primary else ())]
        after += [f for pair, f in secrets.items() if c.name in pair.split("->")]
        deployed[c.name] = deploy_bookinfo.submit(  # type: ignore[call-overload]
            spec, waits[c.name], charts, target=target, wait_for=after
        )
    return deployed


@flow(name="up-mesh", task_runner=LocalThreadPoolTaskRunner(max_workers=MESH_WORKERS), log_prints=False)  # type: ignore[arg-type]
def up_mesh(
    spec: MeshSpec | str,
    kubeconfig: str | None = None,
    connection: MeshwrightTarget | str | None = None,
    force: bool = False,
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
    """
    started = time.time()
    mesh = as_spec(spec)
    target = resolve_target(mesh.target, connection)
    path = check_kubeconfig(mesh, kubeconfig or str(naming.default_kubeconfig(mesh.name)), force=force)
    check_network(mesh, target=target)
    charts = preflight_charts(mesh, target=target)
    expires = naming.expiry(mesh.ttl_seconds, now=started)
    root = ensure_root_ca.submit(mesh)
    creates = {
        c.name: create_cluster.submit(mesh, c.name, target=target, expires=expires) for c in mesh.clusters
    }
    waits = {name: wait_cluster.submit(mesh, future, target=target) for name, future in creates.items()}  # type: ignore[call-overload]
    chains = _istio(mesh, waits, root, charts, target=target)
    secrets = _remote_secrets(mesh, waits, chains, target=target)
    apps = _bookinfo(mesh, waits, charts, chains, secrets, target=target)
    created, create_failures = resolve(creates)
    ready, wait_failures = resolve(waits, skip=create_failures)
    failures: dict[str, BaseException] = {**create_failures, **wait_failures}
    firewall, path_written = None, path
    if not failures:
        clusters = [ready[c.name] for c in mesh.clusters]
        firewall = ensure_firewall(mesh, [c.pod_cidr for c in clusters], target=target, expires=expires)
        path_written = write_kubeconfig(mesh, clusters, path, target=target, force=force)
    roots, root_failures = resolve({"root": root})
    steps, step_failures = resolve(
        {f"{cluster}/{step}": f for cluster, chain in chains.items() for step, f in chain.items()}
    )
    exchanged, secret_failures = resolve(secrets)
    deployed, app_failures = resolve(apps)
    raise_failures({**failures, **root_failures, **step_failures, **secret_failures, **app_failures})
    assert firewall is not None
    report = _report(mesh, started, created, ready, firewall, path_written, roots["root"], charts, steps)
    report.remote_secrets, report.bookinfo = list(exchanged.values()), list(deployed.values())
    published = publish_report.submit(report.provision)  # alongside the verification
    try:
        report.verification = verify_all(mesh, dict(ready), target=target)  # as `meshwright verify`
    finally:
        published.wait()  # the cluster table is published whatever the verification finds
    raise_failures(resolve({"publish_report": published})[1])
    report.finished = time.time()
    return report


def _report(
    mesh: MeshSpec,
    started: float,
    created: dict[str, Any],
    ready: dict[str, ClusterAccess],
    firewall: FirewallResult,
    kubeconfig: str,
    root: RootInfo,
    charts: list[ChartRef],
    steps: dict[str, Any],
) -> MeshReport:
    clusters = [ready[c.name] for c in mesh.clusters]
    cacerts = [v for k, v in steps.items() if k.endswith("/cacerts")]
    releases = [v for v in steps.values() if isinstance(v, ReleaseResult)]
    provision = ProvisionReport.of(
        mesh,
        created=created.values(),
        clusters=clusters,
        firewall=firewall,
        kubeconfig=kubeconfig,
        started=started,
    )
    return MeshReport(
        provision=provision,
        root=root,
        charts=charts,
        cacerts=cacerts,
        releases=releases,
        gateways={k.split("/")[0]: v for k, v in steps.items() if k.endswith("/address")},
        exposed={k.split("/")[0]: v for k, v in steps.items() if k.endswith("/expose")},
        steps=provision.steps + [c.timing for c in cacerts] + [r.timing for r in releases if r.timing],
        started=started,
        finished=time.time(),
    )
