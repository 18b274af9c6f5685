"""What changed since a mesh's previous run (meshwright.history, pure), and how the nightly report
shows it (meshwright.smoke)."""

from __future__ import annotations

from meshwright import history
from meshwright.history import Record, Table
from meshwright.links import link_rows
from meshwright.models import TeardownReport
from meshwright.smoke import render_markdown
from meshwright.verify import Latency, Link
from tests.mesh.test_links import four

DOWN = TeardownReport(mesh="four", deleted_clusters=["central"], firewall="gone", waited=True, seconds=1.0)
VERSIONS = {"istio": "1.30.3", "chart base": "1.30.3", "chart istiod": "1.30.3", "chart gateway": "1.30.3"}


def link(cluster: str, *, ok: bool = True, p95: float | None = 20.0) -> Link:
    broken = (
        {}
        if ok
        else {"layer": "firewall", "reason": f"no firewall rule lets 10.8.0.0/14 reach {cluster}'s nodes"}
    )
    return Link(primary="central", cluster=cluster, ok=ok, latency_ms=Latency(p50=10.0, p95=p95), **broken)


def test_a_link_gone_red_or_back_a_doubled_p95_and_new_versions_are_named() -> None:
    before = Record(
        when="2026-12-05T02:00:00+00:00",
        links=[link("west"), link("east", ok=False), link("north", p95=10.0), link("south")],
        versions=VERSIONS,
    )
    now = Record(
        links=[link("west", ok=False), link("east"), link("north", p95=25.0), link("far")],
        versions={**VERSIONS, "istio": "1.31.0", "chart istiod": "1.31.0"},
    )
    changes = [(c.kind, c.what, c.detail) for c in history.compare(before, now).changes]
    assert changes == [
        ("red", "central -> west", "firewall: no firewall rule lets 10.8.0.0/14 reach west's nodes"),
        (
            "back",
            "central -> east",
            "ok again (was firewall: no firewall rule lets 10.8.0.0/14 reach east's nodes)",
        ),
        ("slower", "central -> north", "p95 10 ms -> 25 ms"),
        ("new link", "central -> far", "ok"),
        ("gone link", "central -> south", "no longer in the mesh"),
        ("version", "istio", "1.30.3 -> 1.31.0"),
        ("version", "chart istiod", "1.30.3 -> 1.31.0"),
    ]


def test_a_p95_at_most_doubled_is_no_change_and_an_unverified_run_compares_versions_only() -> None:
    before = Record(when="t0", links=[link("west", p95=10.0)], versions=VERSIONS)
    assert history.compare(before, Record(links=[link("west", p95=20.0)], versions=VERSIONS)).changes == []
    unverified = history.compare(before, Record(links=None, versions={**VERSIONS, "istio": "1.31.0"}))
    assert [c.kind for c in unverified.changes] == ["version"]


def test_the_previous_run_is_read_back_from_its_tables() -> None:
    links = Table(id="a1", created="2026-12-05T02:00:00+00:00", rows=link_rows([link("west", ok=False)]))
    versions = Table(id="a2", created="2026-12-05T02:10:00+00:00", rows=history.version_rows(VERSIONS))
    found = history.record(links, versions)
    assert found == Record(
        when="2026-12-05T02:10:00+00:00", links=[link("west", ok=False)], versions=VERSIONS
    )
    assert history.record(None, None) is None
    empty = Table(id="a3", created="t", rows=[{"primary": "-", "cluster": "-", "ok": "-"}])
    assert history.record(empty, None) == Record(when="t", links=[], versions=None)


def test_the_nightly_report_shows_the_links_and_what_changed() -> None:
    before = Record(when="2026-12-05T02:00:00+00:00", links=[link("west")], versions=VERSIONS)
    compared = history.compare(before, Record(links=[link("west", ok=False)], versions=VERSIONS))
    failed = {
        "up": "verify: traffic through the ingress has 1 problem(s):\n  reviews-v1 on west never answered"
    }
    report = render_markdown(four(), None, None, DOWN, [], failed, compared=compared)
    assert (
        "| central | west | **broken** | - | 10 | 20 | firewall: no firewall rule lets 10.8.0.0/14 reach west's nodes |"
        in report
    )
    assert "Compared with the run recorded 2026-12-05T02:00:00+00:00:" in report
    assert (
        "| red | central -> west | firewall: no firewall rule lets 10.8.0.0/14 reach west's nodes |" in report
    )
    first = render_markdown(
        four(), None, None, DOWN, [], failed, compared=history.compare(None, compared.now)
    )
    assert "First recorded run of this mesh: nothing to compare with." in first
