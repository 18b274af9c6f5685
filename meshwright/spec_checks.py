"""Rules between the fields of a mesh spec, checked on the raw document.

They run even when some fields are themselves wrong, so that one pass reports every problem:
unique cluster names, `primary` references, overlapping ranges, Bookinfo placement.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from meshwright.bookinfo_catalog import ENTRYPOINT, WORKLOADS
from meshwright.errors import SpecProblem


def _clusters(data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    raw = data.get("clusters")
    if not isinstance(raw, list):
        return []
    return [(i, c) for i, c in enumerate(raw) if isinstance(c, dict)]


def cross_check(data: dict[str, Any]) -> list[SpecProblem]:
    """Rules between fields, on the raw document, tolerant of fields that are themselves wrong."""
    clusters = _clusters(data)
    return [
        *_check_names(clusters),
        *_check_primaries(clusters),
        *_check_cidrs(clusters),
        *_check_bookinfo(data.get("bookinfo"), clusters),
    ]


def _names(clusters: list[tuple[int, dict[str, Any]]]) -> set[str]:
    return {c["name"] for _, c in clusters if isinstance(c.get("name"), str)}


def _check_names(clusters: list[tuple[int, dict[str, Any]]]) -> Iterator[SpecProblem]:
    seen: dict[str, int] = {}
    for i, c in clusters:
        name = c.get("name")
        if not isinstance(name, str):
            continue
        if name in seen:
            yield SpecProblem(
                f"clusters[{i}].name", f"{name!r} is already the name of clusters[{seen[name]}]"
            )
        else:
            seen[name] = i


def _check_primaries(clusters: list[tuple[int, dict[str, Any]]]) -> Iterator[SpecProblem]:
    by_name: dict[str, dict[str, Any]] = {}
    for _, c in clusters:
        if isinstance(c.get("name"), str):
            by_name.setdefault(c["name"], c)
    for i, c in clusters:
        primary = c.get("primary")
        if primary is None:
            continue
        if primary == c.get("name"):
            yield SpecProblem(f"clusters[{i}].primary", "a cluster cannot be its own primary; omit the field")
        elif primary not in by_name:
            yield SpecProblem(f"clusters[{i}].primary", f"{primary!r} is not a cluster of this mesh")
        elif by_name[primary].get("primary") is not None:
            yield SpecProblem(
                f"clusters[{i}].primary", f"{primary!r} is a remote itself; a primary must have no primary"
            )
    if clusters and all(c.get("primary") is not None for _, c in clusters):
        yield SpecProblem("clusters", "at least one cluster must be a primary (a cluster without `primary`)")


def _check_cidrs(clusters: list[tuple[int, dict[str, Any]]]) -> Iterator[SpecProblem]:
    taken: list[tuple[str, ipaddress.IPv4Network]] = []
    for i, c in clusters:
        for field in ("pod_cidr", "services_cidr"):
            net = _as_network(c.get(field))
            if net is None:
                continue
            path = f"clusters[{i}].{field}"
            for other_path, other in taken:
                if net.overlaps(other):
                    yield SpecProblem(path, f"{net} overlaps {other} ({other_path})")
            taken.append((path, net))


def _as_network(value: Any) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(value, strict=True) if isinstance(value, str) else None
    except ValueError:
        return None
    return net if isinstance(net, ipaddress.IPv4Network) else None


def _check_bookinfo(raw: Any, clusters: list[tuple[int, dict[str, Any]]]) -> Iterator[SpecProblem]:
    if not isinstance(raw, dict) or not isinstance(raw.get("placement"), dict):
        return
    names = _names(clusters)
    placed: set[str] = set()
    for cluster, workloads in raw["placement"].items():
        path = f"bookinfo.placement.{cluster}"
        if names and cluster not in names:
            yield SpecProblem(path, f"{cluster!r} is not a cluster of this mesh")
        if not isinstance(workloads, list):
            continue
        yield from _check_workloads(path, workloads)
        placed.update(w for w in workloads if isinstance(w, str))
    yield from _check_calls(placed)


def _check_workloads(path: str, workloads: list[Any]) -> Iterator[SpecProblem]:
    seen: set[str] = set()
    for j, w in enumerate(workloads):
        if w in seen:
            yield SpecProblem(f"{path}[{j}]", f"{w!r} is listed twice on this cluster")
        elif isinstance(w, str) and w not in WORKLOADS:
            known = ", ".join(WORKLOADS)
            yield SpecProblem(f"{path}[{j}]", f"{w!r} is not a Bookinfo workload (known: {known})")
        if isinstance(w, str):
            seen.add(w)


def _check_calls(placed: set[str]) -> Iterator[SpecProblem]:
    known = placed & set(WORKLOADS)
    if not known:
        return
    if ENTRYPOINT not in known:
        yield SpecProblem("bookinfo.placement", f"{ENTRYPOINT!r} (the entry point) is placed nowhere")
    served = {WORKLOADS[w].service for w in known}
    for w in sorted(known):
        for service in WORKLOADS[w].calls:
            if service not in served:
                yield SpecProblem(
                    "bookinfo.placement", f"{w!r} calls {service!r}, but no {service} workload is placed"
                )
