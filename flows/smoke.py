"""mesh_smoke_test: the nightly ephemeral mesh test. up -> verify -> down as one flow run.

Teardown always runs: in `finally` (a failure, or the SIGTERM of a cancellation), and again from
the on_cancellation / on_crashed hooks, which the runner or worker calls when the run's process
was stopped or died (it starts the deletes without waiting: the process that runs hooks is given
little time). When nothing runs at all (the machine died), the spec's `ttl` labels and the hourly
reaper are the backstop. The run's result is the verification's: a failed verification fails
the run, after the teardown.

Each run is compared with the previous run of its mesh (meshwright.history): the newest `links`
and `versions` tables are read before `up` (the previous run's), the `links` table once more after
it (this run's, when it verified); the report names links gone red or back, a p95 more than
doubled, and Istio or chart versions that changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import FlowRun, State
from prefect.logging.loggers import flow_run_logger

from flows._futures import raise_failures
from flows._slots import acting_for, mesh_slot
from flows.drills import run_drills
from flows.mesh import up_mesh
from flows.teardown import teardown_mesh
from meshwright import drills as drill_checks
from meshwright import history, naming, rehearsal
from meshwright.clients import MeshwrightTarget, resolve_target
from meshwright.errors import MeshwrightError, OperationFailed
from meshwright.history import Comparison, Table
from meshwright.links import links_of
from meshwright.models import MeshReport, Rehearsal, SmokeReport, TeardownReport, Timing
from meshwright.spec import MeshSpec, as_spec
from meshwright.traffic import PAGE_PATH
from tasks.istio import preflight_charts
from tasks.report import publish_smoke_report, publish_versions, read_table
from tasks.traffic import Load
from tasks.verify import locate_clusters

EVERY_SECONDS = 0.2  # a rehearsal's request rate: one product page every 0.2 s, as a user's curl loop
NO_UPGRADE = "up found no older istiod revision to upgrade from: nothing was rehearsed"

T = TypeVar("T")


def _timed(stages: list[Timing], name: str, call: Callable[[], T]) -> T:
    started = time.time()
    try:
        return call()
    finally:
        stages.append(Timing(step=name, started=started, finished=time.time()))


def _teardown_hook(flow: Any, flow_run: FlowRun, state: State[Any]) -> None:
    """Cancelled or crashed: start deleting the mesh (not waiting; the reaper finishes the job)."""
    logger = flow_run_logger(flow_run, flow)
    params = flow_run.parameters
    try:
        with acting_for(as_spec(params["spec"]).name):  # the dead run's lease may not have run out
            teardown_mesh(spec=params["spec"], wait=False, connection=params.get("connection"))
        logger.info("teardown started after the run ended %s", state.type.value)
    except Exception as e:  # a hook must not hide the run's own state; the reaper is the backstop
        logger.error(
            "teardown after %s failed: %s; the reaper deletes the mesh at its ttl", state.type.value, e
        )


@flow(name="mesh-smoke-test", on_cancellation=[_teardown_hook], on_crashed=[_teardown_hook], log_prints=False)
def mesh_smoke_test(
    spec: MeshSpec | str,
    connection: MeshwrightTarget | str | None = None,
    kubeconfig: str | None = None,
    drills: list[str] | None = None,
    upgrade_from: str | None = None,
) -> SmokeReport:
    """Build the mesh, verify it, drill it (with `drills`), tear it down whatever happened; fail when
    the verification or a drill fails.

    With `upgrade_from`, a rehearsal of the next Istio upgrade: the mesh is built at that version,
    then `up` moves it to the spec's by revision while requests go through Bookinfo's ingress without
    pause; the run fails when any of them failed, and the report counts them per upgrade phase.

    Publishes a markdown report (topology, versions, per-stage durations, the verification) under
    the key `mesh-<name>-smoke-test`, next to the cluster and control-plane tables.

    Args:
        spec: the mesh spec itself or the path of its YAML file; give it a `ttl` so the reaper
            covers a killed run.
        connection: a MeshwrightTarget block or the name of a saved one; default: the spec's target.
        kubeconfig: where `up` writes the mesh's kubeconfig for the run's length (removed by the
            teardown); default `.meshwright/<mesh>/kubeconfig` under the runner's directory. The
            CLI passes the caller's own path.
        drills: after a verified `up`, each of `failover` and `rotate-secrets` (see verify_mesh),
            as the stage `drills`; a failed one fails the test, after the teardown.
        upgrade_from: an Istio version to build the mesh at first and upgrade from (e.g. 1.29.8);
            needs a `bookinfo` section (its ingress carries the requests). Drills, if any, run
            on the upgraded mesh.
    """
    mesh = as_spec(spec)
    names = drill_checks.parse(drills or [])
    older = rehearsal.older(mesh, upgrade_from) if upgrade_from else None
    with mesh_slot(mesh.name):  # up and down run as its subflows, under the same slot
        return _smoke(mesh, _Run(spec, connection, kubeconfig, names, older))


@dataclass(frozen=True)
class _Run:
    """What up and down of one smoke test are given."""

    spec: MeshSpec | str
    connection: MeshwrightTarget | str | None
    kubeconfig: str | None
    drills: list[str] = field(default_factory=list)
    older: MeshSpec | None = None  # an upgrade rehearsal's mesh at its first version

    def up(self, spec: MeshSpec | str) -> MeshReport:
        return up_mesh(spec=spec, kubeconfig=self.kubeconfig, connection=self.connection)


def _smoke(mesh: MeshSpec, run: _Run) -> SmokeReport:
    stages: list[Timing] = []
    failures: dict[str, BaseException] = {}
    built: MeshReport | None = None
    before = _Before(_read(mesh, "links"), _read(mesh, "versions"))
    installed = _installed(mesh, run)
    rehearsed: Rehearsal | None = None
    stage = "up"  # what an exception escaping the try below is the failure of
    try:  # up_mesh verifies what it built as its last step: its report holds the verification
        built = _timed(stages, "up", lambda: run.up(run.older or run.spec))
        if run.older is not None:
            stage = "upgrade"
            built, rehearsed = _upgrade(mesh, run.older, run, built, stages, failures)
        if run.drills and built.verification is not None and not failures:
            stage = "drills"
            _timed(stages, "drills", lambda: _drill(mesh, run, built, failures))
    except Exception as e:
        failures[stage] = e
    finally:
        down = _down(mesh, run, stages, failures)
    said = {stage: str(error) for stage, error in failures.items()}
    compared = _compare(mesh, before, installed)
    key = publish_smoke_report(mesh, built, down, stages, said, compared, rehearsed)
    raise_failures(failures)
    return SmokeReport(
        mesh=mesh.name,
        passed=True,
        problems=[],
        stages=stages,
        report_key=key,
        changes=compared.changes,
        upgrade=rehearsed,
    )


def _upgrade(
    mesh: MeshSpec,
    older: MeshSpec,
    run: _Run,
    built: MeshReport,
    stages: list[Timing],
    failures: dict[str, BaseException],
) -> tuple[MeshReport, Rehearsal]:
    """`up` at the spec's version while requests flow through the ingress `older` was built with;
    the upgraded mesh's report (the older one's if the upgrade failed) and what the requests saw."""
    seen_first = built.verification.traffic if built.verification else None
    if seen_first is None or not seen_first.address:
        raise OperationFailed(
            "the mesh built first has no ingress address to send requests through", step="up"
        )
    upgraded = None
    with Load(seen_first.address, paths=[PAGE_PATH], pace=EVERY_SECONDS) as traffic:
        try:
            upgraded = _timed(stages, "upgrade", lambda: run.up(run.spec))
        except Exception as e:
            failures["upgrade"] = e
    phases = upgraded.upgrade.phases if upgraded and upgraded.upgrade else []
    seen = rehearsal.count(mesh, older.istio.version, phases, traffic.seen())
    problem = seen.problem() or (None if phases or "upgrade" in failures else NO_UPGRADE)
    if problem and "upgrade" not in failures:
        failures["upgrade"] = OperationFailed(problem, step="upgrade")
    return upgraded or built, seen


def _drill(mesh: MeshSpec, run: _Run, built: MeshReport, failures: dict[str, BaseException]) -> None:
    """The drills on the mesh `up` built and verified; their results join its verification."""
    assert built.verification is not None
    target = resolve_target(mesh.target, run.connection)
    found = locate_clusters(mesh, target=target)
    built.verification.drills = run_drills(mesh, found, built.verification, target=target, names=run.drills)
    error = drill_checks.failure(built.verification.drills)
    if error is not None:
        failures["drills"] = error


@dataclass(frozen=True)
class _Before:
    """The newest tables of the mesh before this run: the previous run's."""

    links: Table | None
    versions: Table | None


def _read(mesh: MeshSpec, kind: str) -> Table | None:
    """The newest version of one of the mesh's tables; a read that fails costs only the comparison."""
    try:
        return read_table(naming.artifact_key(mesh.name, kind))
    except Exception as e:  # the history is a courtesy: it never fails the test
        get_run_logger().warning("the previous %s of mesh %s cannot be read: %s", kind, mesh.name, e)
        return None


def _installed(mesh: MeshSpec, run: _Run) -> dict[str, str] | None:
    """The versions this run installs: Istio's and the charts', resolved as `up` resolves them."""
    try:
        charts = preflight_charts(mesh, target=resolve_target(mesh.target, run.connection))
    except MeshwrightError as e:
        get_run_logger().warning("chart versions unknown (%s): not compared", e)
        return None
    return history.versions(mesh.istio.version, {c.chart: c.version for c in charts})


def _compare(mesh: MeshSpec, before: _Before, installed: dict[str, str] | None) -> Comparison:
    """This run against the previous; publishes the versions it installed for the next run."""
    after = _read(mesh, "links")
    own = after if after and (before.links is None or after.id != before.links.id) else None
    now = history.Record(
        when=own.created if own else "", links=links_of(own.rows) if own else None, versions=installed
    )
    if installed:
        publish_versions(mesh.name, installed)
    return history.compare(history.record(before.links, before.versions), now)


def _down(
    mesh: MeshSpec, run: _Run, stages: list[Timing], failures: dict[str, BaseException]
) -> TeardownReport | None:
    def down() -> TeardownReport:
        return teardown_mesh(spec=run.spec, wait=True, kubeconfig=run.kubeconfig, connection=run.connection)

    try:
        return _timed(stages, "down", down)
    except Exception as e:
        get_run_logger().error(
            "teardown of mesh %s failed: %s; the reaper deletes it at its ttl", mesh.name, e
        )
        failures["down"] = e
        return None
