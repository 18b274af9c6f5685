"""The upgrade by revision that ends `up` when the spec's istio.version is not the revision running.

By then `up`'s DAG has installed the new revision's istiod beside the old one in every cluster
(untagged), upgraded base and the gateways' charts, and routed both revisions on the east-west
gateways. Here, in Istio's canary order (istio.io docs/setup/upgrade/canary): the new control plane
is verified on every primary (every remote synced); with `istio.upgrade.approve` the run pauses for a
person (Prefect's pause_flow_run with an input the UI renders); the tag `default` moves in every
cluster, workloads and gateways are restarted onto it, the mesh is verified, and only then is the old
revision removed. A failure (or "roll back") after the new control plane was installed puts the tag
back, restarts onto the old revision and removes the new one; the run fails saying where. Each
phase's times go into the report, so that a rehearsal can count the requests each one cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from prefect import get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from flows._futures import raise_failures, resolve
from flows.verify import verify_all
from meshwright import istio_values
from meshwright.clients import MeshwrightTarget
from meshwright.errors import MeshwrightError, OperationFailed
from meshwright.models import ChartRef, ClusterAccess, Timing, UpgradeReport
from meshwright.spec import MeshSpec
from meshwright.verify import VerifyReport
from tasks.istio import expose_on_gateway
from tasks.upgrade import check_revision, move_revision_tag, remove_revision, restart_workloads


def _each(names: Iterable[str], start: Callable[[str], Any]) -> None:
    """One task per cluster, in parallel; their failures raised together."""
    raise_failures(resolve({name: start(name) for name in names})[1])


CONTINUE, ROLL_BACK = "continue", "roll back"
APPROVAL_POLL_SECONDS = 2


class UpgradeDecision(RunInput):
    """The answer the approval point waits for (the UI renders it as a form on Resume)."""

    decision: Literal["continue", "roll back"]
    """continue: move the revision tag to the new istiod; roll back: remove it, keep the old."""


class _Phases:
    """The upgrade's phases as they ran, from `started` (when `up` began installing the new revision)."""

    def __init__(self, new: str, started: float) -> None:
        self.done = [Timing(step=f"install revision {new}", started=started, finished=time.time())]

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.time()
        try:
            yield
        finally:
            self.done.append(Timing(step=name, started=began, finished=time.time()))


def upgrade_revisions(
    mesh: MeshSpec,
    access: dict[str, ClusterAccess],
    charts: list[ChartRef],
    addresses: dict[str, str],
    old: str,
    *,
    target: MeshwrightTarget,
    started: float,
) -> tuple[VerifyReport, UpgradeReport]:
    """Move the mesh from istiod revision `old` to the spec's: the verification of the mesh on it,
    and the upgrade's phases (`started`: when `up` began installing the new revision)."""
    new, phases = istio_values.revision(mesh), _Phases(istio_values.revision(mesh), started)
    decision = None
    try:
        with phases.phase(f"verify control plane {new}"):
            _each(
                [c.name for c in mesh.primaries],
                lambda n: check_revision.submit(mesh, access[n], new, target=target),
            )
    except MeshwrightError as e:
        with phases.phase(f"remove revision {new}"):
            _remove(mesh, access, new, keep=old, target=target)
        raise OperationFailed(
            f"upgrade to revision {new} stopped before the tag moved: {e}", step="upgrade"
        ) from e
    if mesh.istio.upgrade.approve:
        with phases.phase("approval"):
            decision = _approval(mesh, old, new)
        if decision != CONTINUE:
            with phases.phase(f"remove revision {new}"):
                _remove(mesh, access, new, keep=old, target=target)
            raise OperationFailed(
                f"upgrade to revision {new} rolled back at its approval point ({decision}); "
                f"the mesh runs {old or 'the unrevisioned istiod'}",
                step="upgrade",
            )
    verification = _move(mesh, access, charts, addresses, old, new, phases, target=target)
    with phases.phase(f"remove revision {old or 'unrevisioned'}"):
        _remove(mesh, access, old, keep=new, target=target)
    return verification, UpgradeReport(old=old, new=new, phases=phases.done, decision=decision)


def _move(
    mesh: MeshSpec,
    access: dict[str, ClusterAccess],
    charts: list[ChartRef],
    addresses: dict[str, str],
    old: str,
    new: str,
    phases: _Phases,
    *,
    target: MeshwrightTarget,
) -> VerifyReport:
    """The tag and the workloads onto `new`, then the mesh verified; back onto `old` if anything fails."""
    try:
        with phases.phase(f"move tag to {new}"):
            _tag(mesh, access, charts, addresses, new, target=target)
        with phases.phase(f"restart workloads onto {new}"):
            _restart(mesh, access, new, target=target)
        with phases.phase("verify mesh"):
            return verify_all(mesh, dict(access), target=target)
    except MeshwrightError as e:
        with phases.phase(f"roll back to {old or 'unrevisioned'}"):
            _tag(mesh, access, charts, addresses, old, target=target)
            _restart(mesh, access, old, target=target)
            _remove(mesh, access, new, keep=old, target=target)
        raise OperationFailed(
            f"upgrade to revision {new} rolled back to {old or 'the unrevisioned istiod'}: {e}",
            step="upgrade",
        ) from e


def _approval(mesh: MeshSpec, old: str, new: str) -> str:
    """Pause the run until someone answers continue or roll back; no answer in time is a roll back."""
    within = mesh.istio.upgrade.approve_within
    get_run_logger().warning(
        "the upgrade of mesh %s from revision %s to %s waits for approval before the tag moves: "
        "Resume this run in the Prefect UI and choose continue or roll back, or run "
        "`meshwright approve <spec>` (add --roll-back to roll back); no answer within %s rolls back",
        mesh.name, old or "unrevisioned", new, within,
    )  # fmt: skip
    try:
        answer = pause_flow_run(
            wait_for_input=UpgradeDecision,
            timeout=mesh.istio.upgrade.approve_seconds,
            poll_interval=APPROVAL_POLL_SECONDS,
            key=f"approve-upgrade-{new}",
        )
    except FlowPauseTimeout:
        return f"no answer within {within}"
    get_run_logger().info("approval of the upgrade to %s answered: %s", new, answer.decision)
    return answer.decision


def _tag(
    mesh: MeshSpec,
    access: dict[str, ClusterAccess],
    charts: list[ChartRef],
    addresses: dict[str, str],
    to: str,
    *,
    target: MeshwrightTarget,
) -> None:
    """The tag `default` onto revision `to` in every cluster."""

    def move(name: str) -> Any:
        pilot = addresses.get(mesh.cluster(name).primary or "")
        return move_revision_tag.submit(
            mesh, access[name], charts, to, target=target, remote_pilot_address=pilot
        )

    _each([c.name for c in mesh.clusters], move)


def _restart(mesh: MeshSpec, access: dict[str, ClusterAccess], to: str, *, target: MeshwrightTarget) -> None:
    """Every workload and gateway whose sidecar another revision injected, restarted onto `to`."""
    _each(
        [c.name for c in mesh.clusters],
        lambda n: restart_workloads.submit(mesh, access[n], to, target=target),
    )


def _remove(
    mesh: MeshSpec, access: dict[str, ClusterAccess], rev: str, *, keep: str, target: MeshwrightTarget
) -> None:
    """Revision `rev` out of every cluster, then only `keep` routed on the east-west gateways."""
    _each([c.name for c in mesh.clusters], lambda n: remove_revision.submit(access[n], rev, target=target))
    exposing = [c.name for c in mesh.primaries if istio_values.exposures(mesh, c)]
    _each(exposing, lambda n: expose_on_gateway.submit(mesh, access[n], target=target, revisions=[keep]))
