"""What changed in a mesh since its previous run: a link gone red or back, a link's p95 latency more
than doubled, Istio or chart versions changed.

Pure. Prefect keeps every version of an artifact key, so the history is there already: each
verification publishes the mesh's `links` table, each smoke test its `versions` table
(tasks/report.py). The smoke test reads the newest of each before it starts (the previous run's),
and the `links` table again once its own verification published one; this module turns those
tables back into a `Record` and compares two of them.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field

from meshwright.links import links_of
from meshwright.verify import Link

SLOWER = 2.0  # a link's p95 more than this many times the previous run's is named


class Table(BaseModel):
    """One version of a table artifact as read back from Prefect."""

    id: str
    created: str  # ISO time, as Prefect recorded it
    rows: list[dict[str, str]]


class Record(BaseModel):
    """One run of a mesh as the next one compares it; None where that run did not tell."""

    when: str = ""
    links: list[Link] | None = None
    versions: dict[str, str] | None = None


class Change(BaseModel):
    kind: str  # red | back | slower | version | new link | gone link
    what: str  # "central -> west", "istio", "chart istiod"
    detail: str


class Comparison(BaseModel):
    """A run against the previous run of its mesh (`previous` is None for the first one recorded)."""

    previous: str | None = None
    now: Record
    changes: list[Change] = Field(default_factory=list)


def versions(istio: str, charts: Mapping[str, str]) -> dict[str, str]:
    """What a run installs: Istio's version and each chart's."""
    return {"istio": istio, **{f"chart {name}": version for name, version in sorted(charts.items())}}


def version_rows(found: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"component": name, "version": version} for name, version in found.items()]


def record(links: Table | None, installed: Table | None) -> Record | None:
    """A run as its tables tell it; None when there is neither."""
    if links is None and installed is None:
        return None
    found = {r.get("component", ""): r.get("version", "") for r in installed.rows} if installed else None
    return Record(
        when=max(t.created for t in (links, installed) if t is not None),
        links=links_of(links.rows) if links else None,
        versions=found,
    )


def compare(before: Record | None, now: Record) -> Comparison:
    """What changed from `before` (the previous run) to `now`; nothing to compare on a side that
    does not tell (a run that never verified has no links)."""
    if before is None:
        return Comparison(now=now)
    changes = []
    if before.links is not None and now.links is not None:
        changes += _links(before.links, now.links)
    if before.versions is not None and now.versions is not None:
        changes += _versions(before.versions, now.versions)
    return Comparison(previous=before.when, now=now, changes=changes)


def _name(link: Link) -> str:
    return f"{link.primary} -> {link.cluster}"


def _links(before: list[Link], now: list[Link]) -> list[Change]:
    was = {_name(k): k for k in before}
    changes = [_link(was[_name(k)], k) for k in now if _name(k) in was]
    changes += [
        Change(kind="new link", what=_name(k), detail=_verdict(k)) for k in now if _name(k) not in was
    ]
    gone = {_name(k) for k in now}
    changes += [
        Change(kind="gone link", what=n, detail="no longer in the mesh") for n in was if n not in gone
    ]
    return [c for c in changes if c is not None]


def _verdict(link: Link) -> str:
    return "ok" if link.ok else f"{link.layer}: {link.reason}"


def _link(was: Link, now: Link) -> Change | None:
    if was.ok and not now.ok:
        return Change(kind="red", what=_name(now), detail=_verdict(now))
    if not was.ok and now.ok:
        return Change(kind="back", what=_name(now), detail=f"ok again (was {_verdict(was)})")
    before, after = was.latency_ms.p95, now.latency_ms.p95
    if before and after and after > SLOWER * before:
        return Change(kind="slower", what=_name(now), detail=f"p95 {before:g} ms -> {after:g} ms")
    return None


def _versions(before: dict[str, str], now: dict[str, str]) -> list[Change]:
    names = list(dict.fromkeys([*before, *now]))
    return [
        Change(kind="version", what=n, detail=f"{before.get(n, 'none')} -> {now.get(n, 'none')}")
        for n in names
        if before.get(n) != now.get(n)
    ]
