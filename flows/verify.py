"""verify_mesh: observe every cluster's control plane in parallel, then Bookinfo's traffic through the
ingress gateway; check, report (one artifact each), fail on problems."""

from __future__ import annotations

from prefect import flow

from flows._futures import bounded_runner, raise_failures, resolve
from flows._slots import mesh_slot
from meshwright.clients import MeshwrightTarget, resolve_target
from meshwright.errors import PermanentError
from meshwright.findings import findings
from meshwright.models import ClusterAccess
from meshwright.spec import MeshSpec, as_spec
from meshwright.traffic import TrafficReport, check_traffic, traffic_failure
from meshwright.verify import ControlPlaneBroken, Observation, VerifyReport, check, failure
from tasks.report import publish_traffic, publish_verification
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


def verify_traffic(
    mesh: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    *,
    target: MeshwrightTarget,
    requests: int = REQUESTS,
    control_plane: list[str] | None = None,
) -> TrafficReport:
    """Bookinfo's traffic through the ingress gateway (`up` calls this after deploying Bookinfo).

    Waits until every placed workload has answered once (at most the target's convergence time, from
    the client factory; not when the control plane is already known broken), then sends `requests`
    GETs of the reviews API and of the product page and counts every answer. On problems, reads
    what may explain them (firewall rules, each cluster's Bookinfo objects) and raises TrafficBroken
    naming them; `control_plane` problems, if any, are offered as explanations too.
    """
    address = ingress_address(mesh, clusters, target=target)
    if address:
        await_traffic(mesh, address, within=0.0 if control_plane else converge_seconds(target))
    replies = send_traffic(address, requests=requests) if address else []
    error = None if address else "the ingress gateway has no load-balancer address (istio-ingressgateway)"
    report = check_traffic(mesh, address, replies, [], error=error)
    if not report.ok:
        states = {n: observe_bookinfo.submit(mesh, a, target=target) for n, a in clusters.items() if a}
        rules = read_firewalls(mesh, target=target)
        seen, failures = resolve(states)
        raise_failures(failures)
        found = findings(mesh, seen, rules) + list(control_plane or [])
        report = check_traffic(mesh, address, replies, found, error=error)
    publish_traffic(mesh, report)
    if not report.ok:
        raise traffic_failure(report)
    return report


def verify_control_plane(
    mesh: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    *,
    target: MeshwrightTarget,
    settle: float = SETTLE_SECONDS,
) -> VerifyReport:
    """Compose the checks inside a running flow (`up` calls this as its last step with what it built).

    Raises ControlPlaneBroken with one line per problem; publishes the table either way.
    """
    futures = {
        name: observe_control_plane.submit(mesh, access, clusters, target=target, settle=settle)
        for name, access in clusters.items()
        if access is not None
    }
    seen, failures = resolve(futures)
    raise_failures(failures)
    seen.update(
        {
            n: Observation(cluster=n, error="the cluster does not exist")
            for n, a in clusters.items()
            if a is None
        }
    )
    report = check(mesh, {c.name: seen[c.name] for c in mesh.clusters if c.name in seen})
    publish_verification(report)
    if not report.ok:
        raise failure(report)
    return report


@flow(name="verify-mesh", task_runner=bounded_runner(), log_prints=False)
def verify_mesh(
    spec: MeshSpec | str,
    connection: MeshwrightTarget | str | None = None,
    settle: float = SETTLE_SECONDS,
    requests: int = REQUESTS,
) -> VerifyReport:
    """Check the control plane of the mesh in SPEC as it exists now.

    Every primary must report every other cluster it should know as synced (istiod's clusterz),
    every cluster must hold the same cacerts root, remotes' istiod Service must point to their
    primary's east-west gateway, and east-west gateways must have addresses.

    Args:
        spec: the mesh spec itself (the UI's form) or the path of its YAML file.
        connection: a MeshwrightTarget block or the name of a saved one; default: the spec's target
            in its usual place.
        settle: seconds a primary may keep a working remote `syncing` before it counts as a problem.
        requests: with a `bookinfo` section, how many requests of each kind go through the ingress
            gateway (0: no traffic check).
    """
    mesh = as_spec(spec)
    target = resolve_target(mesh.target, connection)
    with mesh_slot(mesh.name):
        found = locate_clusters(mesh, target=target)
        return verify_all(mesh, found, target=target, settle=settle, requests=requests)


def verify_all(
    mesh: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    *,
    target: MeshwrightTarget,
    settle: float = SETTLE_SECONDS,
    requests: int = REQUESTS,
) -> VerifyReport:
    """The control plane, then (with a `bookinfo` section and `requests`) Bookinfo's traffic; a
    broken control plane still gets its traffic checked, whose lines join its error. `verify` and
    `up` both end with this."""
    try:
        report = verify_control_plane(mesh, clusters, target=target, settle=settle)
    except ControlPlaneBroken as broken:
        if mesh.bookinfo and requests > 0:
            _traffic_too(mesh, clusters, broken, target=target, requests=requests)
        raise
    if mesh.bookinfo and requests > 0:
        report.traffic = verify_traffic(mesh, clusters, target=target, requests=requests)
    return report


def _traffic_too(
    mesh: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    broken: ControlPlaneBroken,
    *,
    target: MeshwrightTarget,
    requests: int,
) -> None:
    """A broken control plane still gets its traffic checked: the lines join its error."""
    problems = [line.strip() for line in broken.message.splitlines()[1:]]
    try:
        verify_traffic(mesh, clusters, target=target, requests=requests, control_plane=problems)
    except PermanentError as traffic:
        broken.message += "\n" + traffic.message
