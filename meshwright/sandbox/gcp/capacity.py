"""What a GKE cluster's nodes hold against regional quota, and GKE's words when they do not fit. Pure.

Each node is a VM: its machine type's vCPUs count against CPUS, its external address against
IN_USE_ADDRESSES (a public regional cluster of 3 per zone "consumes nine IP addresses",
https://cloud.google.com/kubernetes-engine/docs/concepts/regional-clusters), its boot disk against
SSD_TOTAL_GB (pd-balanced and pd-ssd) or DISKS_TOTAL_GB (pd-standard). `initialNodeCount` is per zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from meshwright.sandbox.gcp import catalog
from meshwright.sandbox.gcp import errors as e

Pool = tuple[int, Mapping[str, Any]]  # (nodes per zone, node config as GKE reports it)


def held(location: str, pools: Iterable[Pool]) -> dict[str, float]:
    """The quota a cluster in `location` with these node pools holds, by metric."""
    zones = len(catalog.node_zones(location))
    total: dict[str, float] = {}
    for count, config in pools:
        nodes = count * zones
        machine = str(config.get("machineType") or "e2-medium")
        disk = "DISKS_TOTAL_GB" if config.get("diskType") == "pd-standard" else "SSD_TOTAL_GB"
        for metric, amount in (
            ("CPUS", nodes * (catalog.guest_cpus(machine) or 0)),
            ("IN_USE_ADDRESSES", nodes),
            (disk, nodes * int(config.get("diskSizeGb") or catalog.DEFAULT_DISK_GB)),
        ):
            total[metric] = total.get(metric, 0.0) + float(amount)
    return total


def of_cluster(view: Mapping[str, Any]) -> dict[str, float]:
    # A hand-edited state file may hold anything here: what is not a pool holds nothing.
    given = view.get("nodePools")
    listed = given if isinstance(given, list) else []
    pools = [
        (_count(p.get("initialNodeCount")), p["config"] if isinstance(p.get("config"), dict) else {})
        for p in listed
        if isinstance(p, dict)
    ]
    return held(str(view["location"]), pools)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def add(totals: Iterable[Mapping[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for total in totals:
        for metric, amount in total.items():
            out[metric] = out.get(metric, 0.0) + amount
    return out


def shortfalls(
    asked: Mapping[str, float], *, limits: Mapping[str, float], used: Mapping[str, float], project: str
) -> list[str]:
    """GKE's sentence for every metric the request does not fit in, in GKE's order (by metric)."""
    lines = []
    for metric in sorted(asked):
        if metric not in limits:
            continue
        available = max(limits[metric] - used.get(metric, 0.0), 0.0)
        if asked[metric] > available:
            lines.append(
                e.QUOTA_REGIONAL.format(
                    metric=metric,
                    asked=asked[metric],
                    short=asked[metric] - available,
                    limit=limits[metric],
                    available=available,
                    project=project,
                )
            )
    return lines
