"""The nightly smoke test's report for a person: topology, versions, stages, verification and
teardown, as the markdown of the run's artifact. Pure: the flow gathers, tasks/report.py publishes.

Failures come in as text (each step's error, `str(error)`): a report is about what a person reads.
"""

from __future__ import annotations

from collections.abc import Mapping

from meshwright.models import MeshReport, TeardownReport, Timing
from meshwright.spec import MeshSpec
from meshwright.verify import VerifyReport


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
    return [*lines, "", f"Roots: {roots}."]


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
