"""The nightly smoke test's report for a person: topology, versions, stages, verification, each
link's verdict, what changed since the previous run (meshwright.history) and teardown, as the
markdown of the run's artifact. Pure: the flow gathers, tasks/report.py publishes.

Failures come in as text (each step's error, `str(error)`): a report is about what a person reads.
"""

from __future__ import annotations

from collections.abc import Mapping

from meshwright import rehearsal
from meshwright.drills import rows as drill_rows
from meshwright.history import Comparison
from meshwright.models import MeshReport, Rehearsal, TeardownReport, Timing
from meshwright.spec import MeshSpec
from meshwright.verify import Link, VerifyReport


def verdict(failures: Mapping[str, str]) -> str:
    """'passed', or which stages failed: the report's headline and its artifact's description."""
    return "passed" if not failures else "failed at " + ", ".join(failures)


def render_markdown(
    mesh: MeshSpec,
    built: MeshReport | None,
    verified: VerifyReport | None,
    down: TeardownReport | None,
    stages: list[Timing],
    failures: Mapping[str, str],
    *,
    compared: Comparison | None = None,
    rehearsed: Rehearsal | None = None,
) -> str:
    """Topology, versions, stage durations, the verification, the links and what changed since
    the previous run, and the teardown, for a person."""
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
        + (rehearsal.markdown(rehearsed) if rehearsed else [])
        + _verification(verified, failures.get("verify") or failures.get("upgrade") or failures.get("up"))
        + _drills(verified)
        + _links(compared.now.links if compared else None)
        + _changes(compared)
        + _teardown(down, failures)
    )
    return "\n".join(lines) + "\n"


def _drills(verified: VerifyReport | None) -> list[str]:
    """The drills of the run (meshwright.drills), a row each; nothing when none ran."""
    if verified is None or not verified.drills:
        return []
    head = [
        "",
        "## Drills",
        "",
        "| drill | subject | ok | requests | served | back | problems |",
        "|---|---|---|---|---|---|---|",
    ]
    cells = ("drill", "subject", "ok", "requests", "served", "back", "problems")
    return head + [
        "| " + " | ".join(_one_line(row[c]) or "-" for c in cells) + " |"
        for row in drill_rows(verified.drills)
    ]


def _outcome(error: str | None) -> str:
    return "ok" if error is None else f"failed: {_one_line(error)}"


def _one_line(error: str) -> str:
    return " ".join(error.split()).replace("|", "\\|")[:300]


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


def _verification(verified: VerifyReport | None, error: str | None) -> list[str]:
    lines = ["", "## Verification", ""]
    if error is not None:
        return [
            *lines,
            "Problems:",
            "",
            *(f"- {p.strip()}" for p in error.splitlines()[1:] or [error]),
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
    mtls = ["", verified.mtls.summary() + "."] if verified.mtls is not None else []
    return [*lines, "", f"Roots: {roots}.", *mtls]


def _cell(value: float | int | None) -> str:
    return "-" if value is None else f"{value:g}"


def _links(links: list[Link] | None) -> list[str]:
    if not links:
        return []
    rows = [
        f"| {k.primary} | {k.cluster} | {'ok' if k.ok else '**broken**'} | {_cell(k.served)} "
        f"| {_cell(k.latency_ms.p50)} | {_cell(k.latency_ms.p95)} "
        f"| {_one_line(f'{k.layer}: {k.reason}') if not k.ok else '-'} |"
        for k in links
    ]
    return [
        "",
        "## Links",
        "",
        "| primary | cluster | verdict | served | p50 ms | p95 ms | what broke |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]


def _changes(compared: Comparison | None) -> list[str]:
    if compared is None:
        return []
    lines = ["", "## Since the last run", ""]
    if compared.previous is None:
        return [*lines, "First recorded run of this mesh: nothing to compare with."]
    said = f"Compared with the run recorded {compared.previous}"
    if compared.now.links is None:
        said += "; this run did not verify the mesh, so its links are not compared"
    if not compared.changes:
        return [*lines, f"{said}: nothing changed."]
    rows = [f"| {c.kind} | {c.what} | {_one_line(c.detail)} |" for c in compared.changes]
    return [*lines, f"{said}:", "", "| change | what | detail |", "|---|---|---|", *rows]


def _teardown(down: TeardownReport | None, failures: Mapping[str, str]) -> list[str]:
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
        f"Gateway load balancers deleted before their clusters: {len(down.load_balancers)}.",
    ]
