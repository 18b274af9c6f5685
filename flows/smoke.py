"""mesh_smoke_test: the nightly ephemeral mesh test. up -> verify -> down as one flow run.

Teardown always runs: in `finally` (a failure, or the SIGTERM of a cancellation), and again from
the on_cancellation / on_crashed hooks, which the runner or worker calls when the run's process
was stopped or died (it starts the deletes without waiting: the process that runs hooks is given
little time). When nothing runs at all (the machine died), the spec's `ttl` labels and the hourly
reaper are the backstop. The run's result is the verification's: a failed verification fails
the run, after the teardown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import FlowRun, State
from prefect.logging.loggers import flow_run_logger

from flows._futures import raise_failures
from flows.mesh import up_mesh
from flows.teardown import teardown_mesh
from flows.verify import verify_mesh
from meshwright.clients import MeshwrightTarget
from meshwright.models import MeshReport, SmokeReport, TeardownReport, Timing
from meshwright.spec import MeshSpec, as_spec
from meshwright.verify import VerifyReport
from tasks.verify import SETTLE_SECONDS

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
    settle: float = SETTLE_SECONDS,
) -> SmokeReport:
    """Build the mesh, verify it, tear it down whatever happened; fail when the verification fails.

    Publishes a markdown report (topology, versions, per-stage durations, the verification) under
    the key `mesh-<name>-smoke-test`, next to the cluster and control-plane tables.

    Args:
        spec: the mesh spec itself or the path of its YAML file; give it a `ttl` so the reaper
            covers a killed run.
        connection: a MeshwrightTarget block or the name of a saved one; default: the spec's target.
        settle: seconds a primary may keep a working remote `syncing` before it counts as a problem.
    """
    mesh = as_spec(spec)
    stages: list[Timing] = []
    failures: dict[str, BaseException] = {}
    built: MeshReport | None = None
    verified: VerifyReport | None = None
    try:
        built = _timed(stages, "up", lambda: up_mesh(spec=spec, connection=connection))
        verified = built.verification or _timed(  # up_mesh verifies what it built as its last step
            stages, "verify", lambda: verify_mesh(spec=spec, connection=connection, settle=settle)
        )
    except Exception as e:
        failures[stages[-1].step if stages else "up"] = e
    finally:
        down = _down(mesh, spec, connection, stages, failures)
    key = publish_smoke_report(mesh, built, verified, down, stages, failures)
    raise_failures(failures)
    return SmokeReport(mesh=mesh.name, passed=True, problems=[], stages=stages, report_key=key)


def _down(
    mesh: MeshSpec,
    spec: MeshSpec | str,
    connection: MeshwrightTarget | str | None,
    stages: list[Timing],
    failures: dict[str, BaseException],
) -> TeardownReport | None:
    try:
        return _timed(stages, "down", lambda: teardown_mesh(spec=spec, wait=True, connection=connection))
    except Exception as e:
        get_run_logger().error(
            "teardown of mesh %s failed: %s; the reaper deletes it at its ttl", mesh.name, e
        )
        failures["down"] = e
        return None


def publish_smoke_report(
    mesh: MeshSpec,
    built: MeshReport | None,
    verified: VerifyReport | None,
    down: TeardownReport | None,
    stages: list[Timing],
    failures: dict[str, BaseException],
) -> str:
    """The run's markdown report, under a key per mesh so the UI keeps its history."""
    key = f"mesh-{mesh.name}-smoke-test"[:60].lower()
    verdict = "passed" if not failures else "failed at " + ", ".join(failures)
    create_markdown_artifact(
        markdown=render_markdown(mesh, built, verified, down, stages, failures),
        key=key,
        description=f"Smoke test of mesh {mesh.name}: {verdict}",
    )
    return key


def render_markdown(
    mesh: MeshSpec,
    built: MeshReport | None,
    verified: VerifyReport | None,
    down: TeardownReport | None,
    stages: list[Timing],
    failures: dict[str, BaseException],
) -> str:
    """Topology, versions, stage durations, the verification and the teardown, for a person."""
    verdict = "**passed**" if not failures else "**failed**"
    lines = [
        f"# Smoke test of mesh `{mesh.name}`: {verdict}",
        "",
        f"Target **{mesh.target.value}**, project `{mesh.project}`, topology **{' + '.join(mesh.topology)}**, "
        f"Istio **{mesh.istio.version}**, ttl {mesh.ttl or 'none'}.",
        "",
        "| cluster | location | role | primary | network |",
        "|---|---|---|---|---|",
        *(
            f"| {c.name} | {c.location} | {c.role.value} | {c.primary or '-'} | {mesh.istio_network(c)} |"
            for c in mesh.clusters
        ),
        "",
        "## Stages",
        "",
        "| stage | seconds | outcome |",
        "|---|---|---|",
        *(f"| {s.step} | {s.seconds:.1f} | {_outcome(failures.get(s.step))} |" for s in stages),
    ]
    lines += (
        _versions(built)
        + _verification(verified, failures.get("verify") or failures.get("up"))
        + _teardown(down, failures)
    )
    return "\n".join(lines) + "\n"


def _outcome(error: BaseException | None) -> str:
    return "ok" if error is None else f"failed: {_one_line(error)}"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()).replace("|", "\\|")[:300]


def _versions(built: MeshReport | None) -> list[str]:
    if built is None:
        return []
    charts = ", ".join(f"{c.chart} {c.version}" for c in built.charts)
    rows = [f"| {r.cluster} | {r.name} | {r.version} | {r.revision} | {r.action} |" for r in built.releases]
    return [
        "",
        "## Versions",
        "",
        f"Charts: {charts}; root CA `{built.root.fingerprint[:23]}` ({built.root.source}).",
        "",
        "| cluster | release | chart version | revision | action |",
        "|---|---|---|---|---|",
        *rows,
    ]


def _verification(verified: VerifyReport | None, error: BaseException | None) -> list[str]:
    lines = ["", "## Verification", ""]
    if error is not None:
        return [
            *lines,
            "Problems:",
            "",
            *(f"- {p.strip()}" for p in str(error).splitlines()[1:] or [str(error)]),
        ]
    if verified is None:
        return [*lines, "Not run: the mesh was not built."]
    rows = [f"| {t.primary} | {c} | {s} |" for t in verified.tables for c, s in t.clusters.items()]
    lines += (
        ["| primary | cluster | status |", "|---|---|---|", *rows]
        if rows
        else ["One cluster: no remote to see."]
    )
    roots = ", ".join(f"{c} `{fp}`" for c, fp in verified.roots.items())
    return [*lines, "", f"Roots: {roots}."]


def _teardown(down: TeardownReport | None, failures: dict[str, BaseException]) -> list[str]:
    if down is None:
        return [
            "",
            "## Teardown",
            "",
            f"Failed: {_one_line(failures['down'])}; the reaper deletes the mesh at its ttl.",
        ]
    clusters = ", ".join(down.deleted_clusters) or "none"
    return [
        "",
        "## Teardown",
        "",
        f"Deleted clusters: {clusters}; firewall rule {down.firewall}; {down.seconds:.1f}s.",
    ]
