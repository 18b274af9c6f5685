"""The nightly test's memory: each run compares with the previous run of its mesh, read back from the
mesh's `links` and `versions` tables in Prefect. The smoke flow's own steps run inside one small flow
(`two_nights`), no mesh built."""

from __future__ import annotations

from prefect import flow

from flows.smoke import _Before, _compare, _read
from meshwright.history import Comparison
from meshwright.spec import validate_spec
from meshwright.verify import Latency, Link, VerifyReport
from tasks.report import publish_links, publish_versions, read_table

SPEC = validate_spec(
    {
        "name": "histmesh",
        "project": "demo-project",
        "clusters": [
            {"name": "central", "location": "us-central1-a"},
            {"name": "west", "location": "us-west1-b", "primary": "central"},
            {"name": "east", "location": "us-east1-b", "primary": "central"},
        ],
    }
)
VERSIONS = {"istio": "1.30.3", "chart istiod": "1.30.3"}
UPGRADED = {**VERSIONS, "istio": "1.31.0"}


def verified(*links: Link) -> VerifyReport:
    return VerifyReport(mesh=SPEC.name, tables=[], roots={}, problems=[], links=list(links))


def link(cluster: str, p95: float, *, ok: bool = True) -> Link:
    broken = (
        {}
        if ok
        else {"layer": "firewall", "reason": f"no firewall rule lets 10.8.0.0/14 reach {cluster}'s nodes"}
    )
    return Link(primary="central", cluster=cluster, ok=ok, latency_ms=Latency(p50=p95 / 2, p95=p95), **broken)


@flow
def two_nights() -> tuple[Comparison, Comparison]:
    """Last night's tables, then tonight: a verification that publishes its links; then a night whose
    run never got to verify."""
    publish_links(verified(link("west", 10.0), link("east", 10.0)))
    publish_versions(SPEC.name, VERSIONS)
    before = _Before(_read(SPEC, "links"), _read(SPEC, "versions"))
    publish_links(verified(link("west", 12.0, ok=False), link("east", 30.0)))
    tonight = _compare(SPEC, before, UPGRADED)
    unverified = _compare(SPEC, _Before(_read(SPEC, "links"), _read(SPEC, "versions")), UPGRADED)
    return tonight, unverified


def test_a_run_is_compared_with_the_previous_run_of_its_mesh_read_back_from_prefect() -> None:
    tonight, unverified = two_nights()
    assert [(c.kind, c.what) for c in tonight.changes] == [
        ("red", "central -> west"),
        ("slower", "central -> east"),
        ("version", "istio"),
    ]
    assert tonight.previous is not None
    published = read_table.fn("mesh-histmesh-versions")
    assert published is not None
    assert {"component": "istio", "version": "1.31.0"} in published.rows  # what the next run compares with
    assert unverified.now.links is None  # no links table of its own: its links are not compared
    assert unverified.changes == []
