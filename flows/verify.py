"""verify_mesh: observe every cluster's control plane in parallel, check, report, fail on problems."""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows._futures import bounded_runner, raise_failures, resolve
from meshwright.clients import MeshwrightTarget, resolve_target
from meshwright.models import ClusterAccess
from meshwright.spec import MeshSpec, load_spec
from meshwright.verify import Observation, VerifyReport, check, failure, table_rows
from tasks.verify import SETTLE_SECONDS, locate_clusters, observe_control_plane


@task(cache_policy=NO_CACHE)
def publish_verification(report: VerifyReport) -> str:
    """The table of what each primary sees, under a key per mesh so the UI keeps its history."""
    key = f"mesh-{report.mesh}-control-plane"[:60].lower()
    verdict = "healthy" if report.ok else f"{len(report.problems)} problem(s): " + "; ".join(report.problems)
    create_table_artifact(
        table=table_rows(report) or [{"primary": "-", "cluster": "-", "status": "-", "root": "-"}],
        key=key,
        description=f"Control plane of mesh {report.mesh}: {verdict}",
    )
    return key


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
    spec: str, connection: MeshwrightTarget | str | None = None, settle: float = SETTLE_SECONDS
) -> VerifyReport:
    """Check the control plane of the mesh in SPEC as it exists now.

    Every primary must report every other cluster it should know as synced (istiod's clusterz),
    every cluster must hold the same cacerts root, remotes' istiod Service must point to their
    primary's east-west gateway, and east-west gateways must have addresses.

    Args:
        spec: path of the mesh spec (YAML).
        connection: a MeshwrightTarget block or the name of a saved one; default: the spec's target
            in its usual place.
        settle: seconds a primary may keep a working remote `syncing` before it counts as a problem.
    """
    mesh = load_spec(spec)
    target = resolve_target(mesh.target, connection)
    return verify_control_plane(mesh, locate_clusters(mesh, target=target), target=target, settle=settle)
