"""verify_mesh: observe every cluster's control plane in parallel, then Bookinfo's traffic through the
ingress gateway; check, give each link of the mesh its verdict, report (one artifact each), fail on
problems. The run keeps its report (tasks/report.py `keep_report`) whatever it finds, so that the
CLI prints it for a failed run too."""

from __future__ import annotations

from typing import NamedTuple

from prefect import flow

from flows._futures import bounded_runner, raise_failures, resolve, submit
from flows._slots import mesh_slot
from flows.drills import run_drills
from meshwright import drills as drill_checks
from meshwright.clients import MeshwrightTarget, resolve_target
from meshwright.findings import Finding, explain
from meshwright.links import judge
from meshwright.models import ClusterAccess
from meshwright.mtls import MtlsReport, check_mtls
from meshwright.spec import MeshSpec, as_spec
from meshwright.traffic import NO_INGRESS, Reply, TrafficReport, check_traffic
from meshwright.verify import Observation, VerifyReport, broken, check
from tasks.mtls import observe_mtls
from tasks.report import keep_report, publish_links, publish_traffic, publish_verification
from tasks.verify import (
    SETTLE_SECONDS,
    await_traffic,
    converge_seconds,
    ingress_address,
    locate_clusters,
    observe_bookinfo,
    observe_control_plane,
    read_firewalls,
    send_traffic,
)

REQUESTS = 30


class TrafficSeen(NamedTuple):
    """The traffic check's report, the counted replies behind it and, when it failed, the causes."""

    report: TrafficReport
    replies: list[Reply]
    causes: list[Finding]


def verify_traffic(
    mesh: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    *,
    target: MeshwrightTarget,
    requests: int = REQUESTS,
    control_plane: list[str] | None = None,
) -> TrafficSeen:
    """Bookinfo's traffic through the ingress gateway; publishes its table, raises nothing it finds.

    Waits until every placed workload has answered once (at most the target's convergence time, from
    the client factory; not when the control plane is already known broken), then sends `requests`
    GETs of the reviews API and of the product page and counts (and times) every answer. On
    problems, reads what may explain them (firewall rules, each cluster's Bookinfo objects);
    `control_plane` problems, if any, are offered as explanations too.
    """
    address = ingress_address(mesh, clusters, target=target)
    if address:
        await_traffic(mesh, address, within=0.0 if control_plane else converge_seconds(target))
    replies = send_traffic(address, requests=requests) if address else []
    error = None if address else NO_INGRESS
    report, causes = check_traffic(mesh, address, replies, [], error=error), []
    if not report.ok:
        states = {n: submit(observe_bookinfo, mesh, a, target=target) for n, a in clusters.items() if a}
        rules = read_firewalls(mesh, target=target)
        seen, failures = resolve(states)
        raise_failures(failures)
        causes = explain(mesh, seen, rules)
        found = [f.text for f in causes] + list(control_plane or [])
        report = check_traffic(mesh, address, replies, found, error=error)
    publish_traffic(mesh, report)
    return TrafficSeen(report, replies, causes)


def verify_mtls(
    mesh: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    *,
    target: MeshwrightTarget,
    traffic: TrafficReport | None,
) -> MtlsReport:
    """Bookinfo's PeerAuthentication mode: each primary's policy and, where Bookinfo runs, a plaintext
    probe from a pod outside the mesh, in parallel; `traffic` says whether mesh traffic passes."""
    futures = {n: submit(observe_mtls, mesh, a, target=target) for n, a in clusters.items() if a}
    seen, failures = resolve(futures)
    raise_failures(failures)
    return check_mtls(mesh, seen, traffic)


def observe_all(
    mesh: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    *,
    target: MeshwrightTarget,
    settle: float = SETTLE_SECONDS,
) -> dict[str, Observation]:
    """Every cluster's control plane, observed in parallel; a cluster that is gone says so."""
    futures = {
        name: submit(observe_control_plane, mesh, access, clusters, target=target, settle=settle)
        for name, access in clusters.items()
        if access is not None
    }
    seen, failures = resolve(futures)
    raise_failures(failures)
    gone = {
        n: Observation(cluster=n, error="the cluster does not exist")
        for n, a in clusters.items()
        if a is None
    }
    seen.update(gone)
    return {c.name: seen[c.name] for c in mesh.clusters if c.name in seen}


def check_all(
    mesh: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    *,
    target: MeshwrightTarget,
    settle: float = SETTLE_SECONDS,
    requests: int = REQUESTS,
) -> VerifyReport:
    """The control plane, then (with a `bookinfo` section and `requests`) Bookinfo's traffic, then
    each link's verdict; every table published, nothing raised for what they find (`broken` says).
    A broken control plane still gets its traffic checked, whose lines join its error."""
    seen = observe_all(mesh, clusters, target=target, settle=settle)
    report = check(mesh, seen)
    publish_verification(report)
    traffic = None
    if mesh.bookinfo and requests > 0:
        traffic = verify_traffic(
            mesh, clusters, target=target, requests=requests, control_plane=report.problems
        )
        report.traffic = traffic.report
        report.mtls = verify_mtls(mesh, clusters, target=target, traffic=report.traffic)
    report.links = judge(
        mesh,
        seen,
        traffic=report.traffic,
        replies=traffic.replies if traffic else (),
        causes=traffic.causes if traffic else (),
    )
    publish_links(report)
    return report


def verify_all(
    mesh: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    *,
    target: MeshwrightTarget,
    settle: float = SETTLE_SECONDS,
    requests: int = REQUESTS,
) -> VerifyReport:
    """`check_all`, raising ControlPlaneBroken (the traffic's and mTLS's lines joined), TrafficBroken
    or MtlsBroken when the mesh is not whole. `verify` and `up` both end with this."""
    report = check_all(mesh, clusters, target=target, settle=settle, requests=requests)
    error = broken(report)
    if error is not None:
        raise error
    return report


@flow(name="verify-mesh", task_runner=bounded_runner(), log_prints=False)
def verify_mesh(
    spec: MeshSpec | str,
    connection: MeshwrightTarget | str | None = None,
    settle: float = SETTLE_SECONDS,
    requests: int = REQUESTS,
    drills: list[str] | None = None,
) -> VerifyReport:
    """Check the mesh in SPEC as it exists now, link by link; then, with `drills`, break it on purpose.

    Every primary must report every other cluster it should know as synced (istiod's clusterz),
    every cluster must hold the same cacerts root, remotes' istiod Service must point to their
    primary's east-west gateway, east-west gateways must have addresses, and (with a `bookinfo`
    section) every placed workload must answer through the ingress gateway, Bookinfo's namespace must
    have the spec's PeerAuthentication mode and, under STRICT, a pod without sidecar must be refused
    where Bookinfo runs. Each (primary, cluster)
    link gets a verdict naming the layer that broke, and the latency of the requests it served.

    Args:
        spec: the mesh spec itself (the UI's form) or the path of its YAML file.
        connection: a MeshwrightTarget block or the name of a saved one; default: the spec's target
            in its usual place.
        settle: seconds a primary may keep a working remote `syncing` before it counts as a problem.
        requests: with a `bookinfo` section, how many requests of each kind go through the ingress
            gateway (0: no traffic check, nor mTLS probe).
        drills: after a verification that passed, each of `failover` (a placed reviews version
            scaled to 0 and back) and `rotate-secrets` (every reader token replaced, the old one
            revoked) while requests flow through the ingress; each puts back what it changed, and
            one that fails fails the run (meshwright.drills).
    """
    mesh = as_spec(spec)
    target = resolve_target(mesh.target, connection)
    names = drill_checks.parse(drills or [])
    with mesh_slot(mesh.name):
        found = locate_clusters(mesh, target=target)
        report = check_all(mesh, found, target=target, settle=settle, requests=requests)
        if names:
            report.drills = run_drills(mesh, found, report, target=target, names=names)
    keep_report(report)
    error = broken(report)
    if error is not None:
        raise error
    return report
