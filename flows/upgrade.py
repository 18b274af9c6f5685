"""The upgrade by revision that ends `up` when the spec's istio.version is not the revision running.

By then `up`'s DAG has installed the new revision's istiod beside the old one in every cluster
(untagged), upgraded base and the gateways' charts, and routed both revisions on the east-west
gateways. Here, in Istio's canary order (istio.io docs/setup/upgrade/canary): the new control plane
is verified on every primary (every remote synced), the tag `default` moves in every cluster,
workloads and gateways are restarted onto it, the mesh is verified, and only then is the old
revision removed. A failure after the tag moved puts the tag back, restarts onto the old revision and
removes the new one; the run fails saying where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flows._futures import raise_failures, resolve
from flows.verify import verify_all
from meshwright import istio_values
from meshwright.clients import MeshwrightTarget
from meshwright.errors import MeshwrightError, OperationFailed
from meshwright.models import ChartRef, ClusterAccess
from meshwright.spec import MeshSpec
from meshwright.verify import VerifyReport
from tasks.istio import expose_on_gateway
from tasks.upgrade import check_revision, move_revision_tag, remove_revision, restart_workloads


def _each(names: Iterable[str], start: Callable[[str], Any]) -> None:
    """One task per cluster, in parallel; their failures raised together."""
    raise_failures(resolve({name: start(name) for name in names})[1])


def upgrade_revisions(
    mesh: MeshSpec,
    access: dict[str, ClusterAccess],
    charts: list[ChartRef],
    addresses: dict[str, str],
    old: str,
    *,
    target: MeshwrightTarget,
) -> VerifyReport:
    """Move the mesh from istiod revision `old` to the spec's; the verification of the mesh on it."""
    new = istio_values.revision(mesh)
    try:
        _each(
            [c.name for c in mesh.primaries],
            lambda n: check_revision.submit(mesh, access[n], new, target=target),
        )
    except MeshwrightError as e:
        _remove(mesh, access, new, keep=old, target=target)
        raise OperationFailed(
            f"upgrade to revision {new} stopped before the tag moved: {e}", step="upgrade"
        ) from e
    try:
        _switch(mesh, access, charts, addresses, new, target=target)
        verification = verify_all(mesh, dict(access), target=target)
    except MeshwrightError as e:
        _switch(mesh, access, charts, addresses, old, target=target)
        _remove(mesh, access, new, keep=old, target=target)
        raise OperationFailed(
            f"upgrade to revision {new} rolled back to {old or 'the unrevisioned istiod'}: {e}",
            step="upgrade",
        ) from e
    _remove(mesh, access, old, keep=new, target=target)
    return verification


def _switch(
    mesh: MeshSpec,
    access: dict[str, ClusterAccess],
    charts: list[ChartRef],
    addresses: dict[str, str],
    to: str,
    *,
    target: MeshwrightTarget,
) -> None:
    """The tag onto `to` in every cluster, then every workload and gateway restarted onto it."""

    def move(name: str) -> Any:
        pilot = addresses.get(mesh.cluster(name).primary or "")
        return move_revision_tag.submit(
            mesh, access[name], charts, to, target=target, remote_pilot_address=pilot
        )

    names = [c.name for c in mesh.clusters]
    _each(names, move)
    _each(names, lambda n: restart_workloads.submit(mesh, access[n], to, target=target))


def _remove(
    mesh: MeshSpec, access: dict[str, ClusterAccess], rev: str, *, keep: str, target: MeshwrightTarget
) -> None:
    """Revision `rev` out of every cluster, then only `keep` routed on the east-west gateways."""
    _each([c.name for c in mesh.clusters], lambda n: remove_revision.submit(access[n], rev, target=target))
    exposing = [c.name for c in mesh.primaries if istio_values.exposures(mesh, c)]
    _each(exposing, lambda n: expose_on_gateway.submit(mesh, access[n], target=target, revisions=[keep]))
