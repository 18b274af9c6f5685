"""Rules between the fields of a mesh spec, checked on typed values only.

Unique cluster names, `primary` references, overlapping ranges and Bookinfo placement relate
fields to each other. They read `Relations`: the few fields they need, typed. When the whole spec
validated, those come from the model (`meshwright.spec` builds them); when some field is wrong,
from the fields of the document that have their type (`relations_of_document`), so that one pass
still reports every problem. A value of the wrong type (a list where a name belongs) is never
compared or hashed here: pydantic reports it, and the rules skip it. A problem names fields by
their path and never quotes a value (the catalog's workload names are not the document's).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import StringConstraints, TypeAdapter, ValidationError

from meshwright.bookinfo_catalog import ENTRYPOINT, WORKLOADS
from meshwright.errors import SpecProblem, key_name

T = TypeVar("T")
# A subnet holds at most 30 secondary ranges, a hard limit; every cluster puts its pod range (and its
# services range, when the spec names one) on its subnet (cilium/cilium#18821, elastic/cloud-on-k8s#2615).
MAX_SECONDARY_RANGES = 30
# The model strips whitespace from every string; the typed view of a document does the same.
_STR: TypeAdapter[str] = TypeAdapter(Annotated[str, StringConstraints(strip_whitespace=True)])


@dataclass(frozen=True)
class ClusterRefs:
    """What the rules read of one cluster; None where the field is absent or not a string."""

    index: int
    name: str | None
    primary: str | None
    ranges: tuple[tuple[str, str], ...] = ()  # (field, CIDR text)

    @classmethod
    def of(
        cls,
        index: int,
        *,
        name: str | None,
        primary: str | None,
        pod_cidr: str | None,
        services_cidr: str | None,
    ) -> ClusterRefs:
        ranges = (("pod_cidr", pod_cidr), ("services_cidr", services_cidr))
        return cls(index, name, primary, tuple((f, v) for f, v in ranges if v is not None))


@dataclass(frozen=True)
class Relations:
    """The typed fields the rules relate: the clusters, and Bookinfo's placement when given.

    A placement's workload is None where the document holds something else than a string;
    `placement_complete` is False when an entry of the placement was left out for its type.
    """

    clusters: tuple[ClusterRefs, ...]
    placement: Mapping[str, tuple[str | None, ...]] | None = None
    placement_complete: bool = True


def relations_of_document(data: Mapping[str, Any]) -> Relations:
    """The relations of a document whose fields are not all valid: what has its type, and only that."""
    raw = data.get("clusters")
    items = list(enumerate(raw)) if isinstance(raw, list) else []
    clusters = tuple(_cluster_refs(i, c) for i, c in items if isinstance(c, dict))
    bookinfo = data.get("bookinfo")
    placement = bookinfo.get("placement") if isinstance(bookinfo, dict) else None
    if not isinstance(placement, dict):
        return Relations(clusters)
    typed = _typed_placement(placement)
    return Relations(clusters, typed, placement_complete=len(typed) == len(placement))


def _typed(adapter: TypeAdapter[T], value: Any) -> T | None:
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def _cluster_refs(index: int, raw: dict[Any, Any]) -> ClusterRefs:
    name, primary = _typed(_STR, raw.get("name")), _typed(_STR, raw.get("primary"))
    pod_cidr, services_cidr = (_typed(_STR, raw.get(f)) for f in ("pod_cidr", "services_cidr"))
    return ClusterRefs.of(index, name=name, primary=primary, pod_cidr=pod_cidr, services_cidr=services_cidr)


def _typed_placement(raw: dict[Any, Any]) -> dict[str, tuple[str | None, ...]]:
    placement: dict[str, tuple[str | None, ...]] = {}
    for key, workloads in raw.items():
        cluster = _typed(_STR, key)
        if cluster is not None and isinstance(workloads, list):
            placement[cluster] = tuple(_typed(_STR, w) for w in workloads)
    return placement


def cross_check(relations: Relations) -> list[SpecProblem]:
    """Every problem between fields, each with the path of the field it is about."""
    clusters = relations.clusters
    return [
        *_check_names(clusters),
        *_check_primaries(clusters),
        *_check_cidrs(clusters),
        *_check_bookinfo(relations.placement, clusters, complete=relations.placement_complete),
    ]


def _check_names(clusters: tuple[ClusterRefs, ...]) -> Iterator[SpecProblem]:
    seen: dict[str, int] = {}
    for c in clusters:
        if c.name is None:
            continue
        if c.name in seen:
            yield SpecProblem(f"clusters[{c.index}].name", f"already the name of clusters[{seen[c.name]}]")
        else:
            seen[c.name] = c.index


def _check_primaries(clusters: tuple[ClusterRefs, ...]) -> Iterator[SpecProblem]:
    by_name: dict[str, ClusterRefs] = {}
    for c in clusters:
        if c.name is not None:
            by_name.setdefault(c.name, c)
    every_name_known = all(c.name is not None for c in clusters)
    for c in clusters:
        if c.primary is None:
            continue
        path = f"clusters[{c.index}].primary"
        if c.primary == c.name:
            yield SpecProblem(path, "a cluster cannot be its own primary; omit the field")
        elif c.primary not in by_name and every_name_known:
            yield SpecProblem(path, "names no cluster of this mesh")
        elif c.primary in by_name and by_name[c.primary].primary is not None:
            remote = by_name[c.primary].index
            yield SpecProblem(path, f"names a remote (clusters[{remote}]); a primary must have no primary")
    if clusters and all(c.primary is not None for c in clusters):
        yield SpecProblem("clusters", "at least one cluster must be a primary (a cluster without `primary`)")


def _check_cidrs(clusters: tuple[ClusterRefs, ...]) -> Iterator[SpecProblem]:
    taken: list[tuple[str, ipaddress.IPv4Network]] = []
    for c in clusters:
        for field, text in c.ranges:
            net = _as_network(text)
            if net is None:
                continue
            path = f"clusters[{c.index}].{field}"
            for other_path, other in taken:
                if net.overlaps(other):
                    yield SpecProblem(path, f"overlaps {other_path}")
            taken.append((path, net))


def _as_network(value: str) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return None
    return net if isinstance(net, ipaddress.IPv4Network) else None


def _check_bookinfo(
    placement: Mapping[str, tuple[str | None, ...]] | None,
    clusters: tuple[ClusterRefs, ...],
    *,
    complete: bool,
) -> Iterator[SpecProblem]:
    if placement is None:
        return
    # A cluster without a typed name may be the one a placement names; only sure problems are told.
    names = {c.name for c in clusters if c.name is not None}
    every_name_known = all(c.name is not None for c in clusters)
    placed: set[str] = set()
    for cluster, workloads in placement.items():
        path = f"bookinfo.placement.{key_name(cluster)}"
        if names and every_name_known and cluster not in names:
            yield SpecProblem(path, "not a cluster of this mesh")
        yield from _check_workloads(path, workloads)
        placed.update(w for w in workloads if w is not None)
    if complete and all(None not in workloads for workloads in placement.values()):
        yield from _check_calls(placed)  # with a workload unknown, who serves whom is unknown


def _check_workloads(path: str, workloads: tuple[str | None, ...]) -> Iterator[SpecProblem]:
    seen: set[str] = set()
    for j, w in enumerate(workloads):
        if w is None:
            continue
        if w in seen:
            yield SpecProblem(f"{path}[{j}]", "listed twice on this cluster")
        elif w not in WORKLOADS:
            known = ", ".join(WORKLOADS)
            yield SpecProblem(f"{path}[{j}]", f"not a Bookinfo workload (known: {known})")
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


def shared_subnet_warnings(clusters: list[tuple[str, str | None, bool]]) -> list[str]:
    """Clusters (region, subnetwork, has a services range) that would share one subnet (those of a
    region without `subnetwork`, on an auto mode VPC, or those naming the same one) and need more
    than its 30 secondary ranges."""
    by_subnet: dict[tuple[str, str | None], int] = {}
    for region, subnetwork, services in clusters:
        key = (region, subnetwork)
        by_subnet[key] = by_subnet.get(key, 0) + 1 + services
    return [
        f"{count} secondary ranges in {('subnetwork ' + subnet) if subnet else 'the auto mode subnet'} of "
        f"{region}, which holds at most {MAX_SECONDARY_RANGES}: give some of its clusters their own `subnetwork`"
        for (region, subnet), count in sorted(by_subnet.items(), key=lambda i: (i[0][0], i[0][1] or ""))
        if count > MAX_SECONDARY_RANGES
    ]
