"""A run's reports as Prefect artifacts: tables and markdown a person reads in the UI.

Each artifact has a key per mesh (`naming.artifact_key`), so the UI keeps its history from run to
run, and the nightly test reads the previous run's tables back (`read_table`). What the tables and
the markdown say is computed by pure modules (meshwright.verify, meshwright.traffic,
meshwright.links, meshwright.history, meshwright.smoke); this module only publishes and reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from uuid import UUID

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from prefect.runtime import flow_run

from meshwright import naming, smoke
from meshwright.drift import Drift
from meshwright.history import Comparison, Table, version_rows
from meshwright.links import link_rows
from meshwright.models import MeshReport, ProvisionReport, Rehearsal, TeardownReport, Timing
from meshwright.spec import MeshSpec
from meshwright.traffic import TrafficReport, traffic_rows
from meshwright.verify import VerifyReport, table_rows

PRUNE_TAG = "prune"


def cluster_rows(report: ProvisionReport) -> list[dict[str, str]]:
    return [
        {
            "cluster": c.name,
            "location": c.location,
            "status": c.status,
            "endpoint": c.endpoint,
            "pod CIDR": c.pod_cidr,
            "seconds": f"{c.timing.seconds:.1f}",
        }
        for c in report.clusters
    ]


def _verdict(problems: list[str]) -> str:
    return (f"{len(problems)} problem(s): " + "; ".join(problems)) if problems else "healthy"


def _table(key: str, rows: list[dict[str, str]], empty: dict[str, str], description: str) -> str:
    """A table artifact; `empty` stands in for no rows (Prefect shows nothing for an empty table)."""
    create_table_artifact(table=rows or [empty], key=key, description=description)
    return key


@task(cache_policy=NO_CACHE)
def publish_report(report: ProvisionReport) -> str:
    """Publish the cluster table under a key per mesh, so the UI shows its history."""
    return _table(
        naming.artifact_key(report.mesh),
        cluster_rows(report),
        {"cluster": "-"},
        f"Mesh {report.mesh} on {report.target} ({report.project}): firewall {report.firewall.name} "
        f"{report.firewall.action}; provisioned in {report.seconds:.1f}s",
    )


@task(cache_policy=NO_CACHE)
def publish_verification(report: VerifyReport) -> str:
    """The table of what each primary sees, under a key per mesh so the UI keeps its history."""
    return _table(
        naming.artifact_key(report.mesh, "control-plane"),
        table_rows(report),
        {"primary": "-", "cluster": "-", "status": "-", "root": "-"},
        f"Control plane of mesh {report.mesh}: {_verdict(report.problems)}",
    )


@task(cache_policy=NO_CACHE)
def publish_links(report: VerifyReport) -> str:
    """Each link's verdict, latency and reason, under a key per mesh: every verification is kept,
    and the nightly test compares with the previous one."""
    broken = [f"{k.primary} -> {k.cluster}" for k in report.links if not k.ok]
    said = f"{len(report.links) - len(broken)}/{len(report.links)} ok"
    return _table(
        naming.artifact_key(report.mesh, "links"),
        link_rows(report.links),
        {"primary": "-", "cluster": "-", "ok": "-", "reason": "one cluster: no link"},
        f"Links of mesh {report.mesh}: {said}" + (f"; broken: {', '.join(broken)}" if broken else ""),
    )


@task(
    task_run_name=naming.KEPT_REPORT,
    persist_result=True,
    result_serializer="json",
    # A key of its own, never a cache's: Prefect writes no result for a task without a key (NO_CACHE).
    result_storage_key="verify-report-{task_run.id}",
)
def keep_report(report: VerifyReport) -> VerifyReport:
    """The report as this task run's persisted result, whatever the verification found: a failed
    run's own result is its error, so the CLI reads the report of a failed run from here."""
    return report


@task(cache_policy=NO_CACHE)
def read_table(key: str) -> Table | None:
    """The newest version of a table artifact (Prefect keeps every version of a key); None if none."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    if not found:
        return None
    rows = json.loads(found[0].data) if isinstance(found[0].data, str) else found[0].data
    created = found[0].created.isoformat() if found[0].created else ""
    return Table(id=str(found[0].id), created=created, rows=rows if isinstance(rows, list) else [])


@task(cache_policy=NO_CACHE)
def publish_versions(mesh: str, installed: dict[str, str]) -> str:
    """What a smoke test installed (Istio, each chart), under a key per mesh, for the next run."""
    return _table(
        naming.artifact_key(mesh, "versions"),
        version_rows(installed),
        {"component": "-", "version": "-"},
        f"Versions of mesh {mesh}: " + ", ".join(f"{k} {v}" for k, v in installed.items()),
    )


@task(cache_policy=NO_CACHE)
def publish_traffic(mesh: MeshSpec, report: TrafficReport) -> str:
    """Answers per cluster and reviews version, and the failures, under a key per mesh."""
    return _table(
        naming.artifact_key(report.mesh, "traffic"),
        traffic_rows(mesh, report),
        {"cluster": "-", "workload": "-", "answers": "-"},
        f"Traffic of mesh {report.mesh} through {report.address}, {report.requests} requests: "
        + _verdict(report.problems),
    )


@task(cache_policy=NO_CACHE)
def publish_smoke_report(
    mesh: MeshSpec,
    built: MeshReport | None,
    down: TeardownReport | None,
    stages: list[Timing],
    failures: Mapping[str, str],
    compared: Comparison | None = None,
    rehearsed: Rehearsal | None = None,
) -> str:
    """The smoke test's markdown report (meshwright.smoke), under a key per mesh."""
    key = naming.artifact_key(mesh.name, "smoke-test")
    verified = built.verification if built else None
    markdown = smoke.render_markdown(
        mesh, built, verified, down, stages, failures, compared=compared, rehearsed=rehearsed
    )
    create_markdown_artifact(
        markdown=markdown,
        key=key,
        description=f"Smoke test of mesh {mesh.name}: {smoke.verdict(failures)}",
    )
    return key


@task(cache_policy=NO_CACHE)
def publish_changes(drift: Drift, *, prune: bool) -> str:
    """What this run of `up` changes in the mesh (meshwright.drift), under a key per mesh: a run
    triggered from the UI shows what it did. A run that prunes is tagged `prune` as well."""
    if prune:
        run = flow_run.get_id()
        if run:
            with get_client(sync_client=True) as client:
                tags = [*flow_run.get_tags(), PRUNE_TAG]
                client.update_flow_run(UUID(run), tags=sorted(set(tags)))
    rows = [
        {"action": c.action, "kind": c.kind, "what": c.what, "where": c.where, "detail": c.detail}
        for c in drift.changes
    ]
    said = (
        "builds it"
        if not drift.exists
        else f"{len(drift.changes)} change(s)"
        if drift.changes
        else "nothing to change"
    )
    return _table(
        naming.artifact_key(drift.mesh, "changes"),
        rows,
        {"action": "-", "kind": "-", "what": "nothing to change" if drift.exists else "new mesh"},
        f"Changes to mesh {drift.mesh}{' (with prune)' if prune else ''}: {said}",
    )
