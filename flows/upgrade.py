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
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

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
    new = istio_values.revision(mesh)
    done = [Timing(step=f"install revision {new}", started=started, finished=time.time())]
    upgrade = _Upgrade(mesh, access, charts, addresses, target, old, new, done)
    upgrade.check()
    decision = upgrade.approval() if mesh.istio.upgrade.approve else None
    verification = upgrade.move()
    with upgrade.phase(f"remove revision {old or 'unrevisioned'}"):
        upgrade.remove(old, keep=new)
    return verification, UpgradeReport(old=old, new=new, phases=done, decision=decision)


@dataclass(frozen=True)
class _Upgrade:
    """One upgrade from revision `old` to `new`: its steps across the mesh, each phase timed in `done`."""

    mesh: MeshSpec
    access: dict[str, ClusterAccess]
    charts: list[ChartRef]
    addresses: dict[str, str]
    target: MeshwrightTarget
    old: str
    new: str
    done: list[Timing]

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.time()
        try:
            yield
        finally:
            self.done.append(Timing(step=name, started=began, finished=time.time()))

    def check(self) -> None:
        """The new control plane verified on every primary; removed again when it is not."""
        mesh, new = self.mesh, self.new
        try:
            with self.phase(f"verify control plane {new}"):
                _each(
                    [c.name for c in mesh.primaries],
                    lambda n: check_revision.submit(mesh, self.access[n], new, target=self.target),
                )
        except MeshwrightError as e:
            self.abandon(f"stopped before the tag moved: {e}", cause=e)

    def approval(self) -> str:
        """The approval point's answer; anything but continue abandons the upgrade."""
        with self.phase("approval"):
            decision = _approval(self.mesh, self.old, self.new)
        if decision != CONTINUE:
            self.abandon(
                f"rolled back at its approval point ({decision}); the mesh runs {self.old or 'the unrevisioned istiod'}"
            )
        return decision

    def abandon(self, why: str, *, cause: BaseException | None = None) -> NoReturn:
        """Before the tag moved: the new revision removed, the run failed saying why."""
        with self.phase(f"remove revision {self.new}"):
            self.remove(self.new, keep=self.old)
        raise OperationFailed(f"upgrade to revision {self.new} {why}", step="upgrade") from cause

    def move(self) -> VerifyReport:
        """The tag and the workloads onto the new revision, then the mesh verified; back onto the old
        one if anything fails."""
        old, new = self.old, self.new
        try:
            with self.phase(f"move tag to {new}"):
                self.tag(new)
            with self.phase(f"restart workloads onto {new}"):
                self.restart(new)
            with self.phase("verify mesh"):
                return verify_all(self.mesh, dict(self.access), target=self.target)
        except MeshwrightError as e:
            with self.phase(f"roll back to {old or 'unrevisioned'}"):
                self.tag(old)
                self.restart(old)
                self.remove(new, keep=old)
            raise OperationFailed(
                f"upgrade to revision {new} rolled back to {old or 'the unrevisioned istiod'}: {e}",
                step="upgrade",
            ) from e

    def tag(self, to: str) -> None:
        """The tag `default` onto revision `to` in every cluster."""

        def move(name: str) -> Any:
            pilot = self.addresses.get(self.mesh.cluster(name).primary or "")
            return move_revision_tag.submit(
                self.mesh, self.access[name], self.charts, to, target=self.target, remote_pilot_address=pilot
            )

        _each([c.name for c in self.mesh.clusters], move)

    def restart(self, to: str) -> None:
        """Every workload and gateway whose sidecar another revision injected, restarted onto `to`."""
        _each(
            [c.name for c in self.mesh.clusters],
            lambda n: restart_workloads.submit(self.mesh, self.access[n], to, target=self.target),
        )

    def remove(self, rev: str, *, keep: str) -> None:
        """Revision `rev` out of every cluster, then only `keep` routed on the east-west gateways."""
        mesh, target = self.mesh, self.target
        _each(
            [c.name for c in mesh.clusters],
            lambda n: remove_revision.submit(self.access[n], rev, target=target),
        )
        exposing = [c.name for c in mesh.primaries if istio_values.exposures(mesh, c)]
        _each(
            exposing,
            lambda n: expose_on_gateway.submit(mesh, self.access[n], target=target, revisions=[keep]),
        )


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
