"""The drills of `verify --drill` and of the nightly test, one after another on a mesh that passed
its verification (a drill on a broken mesh would only find what the verification already said)."""

from __future__ import annotations

from meshwright import drills
from meshwright.clients import MeshwrightTarget
from meshwright.drills import DrillFailed, DrillResult
from meshwright.errors import MeshwrightError
from meshwright.models import ClusterAccess
from meshwright.spec import MeshSpec
from meshwright.verify import VerifyReport
from tasks.drills import drill_failover, drill_rotate_secrets, publish_drills
from tasks.verify import ingress_address


def run_drills(
    mesh: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    report: VerifyReport,
    *,
    target: MeshwrightTarget,
    names: list[str],
) -> list[DrillResult]:
    """Each drill asked for, in order; publishes their table. Raises nothing they find."""
    if not report.ok:
        why = "not run: the mesh failed its verification first"
        return [DrillResult(drill=n, subject="-", problems=[why]) for n in names]
    address = ingress_address(mesh, clusters, target=target) if mesh.bookinfo else None
    results = [_drill(mesh, clusters, address, target=target, name=n) for n in names]
    publish_drills(mesh.name, results)
    return results


def _drill(
    mesh: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    address: str | None,
    *,
    target: MeshwrightTarget,
    name: str,
) -> DrillResult:
    """One drill; what stops it (a mesh it cannot drill, an API that stays away) is its problem, so
    the report with the others is still kept and printed."""
    try:
        if name == drills.ROTATE_SECRETS:
            return drill_rotate_secrets(mesh, clusters, address, target=target)
        if address is None:
            raise DrillFailed("needs Bookinfo's ingress gateway with an address", step="drill")
        return drill_failover(mesh, clusters, address, target=target)
    except MeshwrightError as e:
        return DrillResult(drill=name, subject="-", problems=[e.message])
