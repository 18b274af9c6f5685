"""What a spec asks of regional quota, and what falls short. Pure: the numbers come from the tasks.

Each node is a VM: its machine type's vCPUs count against CPUS, its external address against
IN_USE_ADDRESSES, its boot disk (GKE's default, 100 GB of pd-balanced) against SSD_TOTAL_GB
(https://cloud.google.com/kubernetes-engine/docs/concepts/regional-clusters: a regional pool of 3 per
zone "consumes nine IP addresses"; GKE's quota error asks SSD_TOTAL_GB '300.0' for 3 default nodes).
A new project's limits are small (e.g. 24 CPUS in a region), so this is checked before any create.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from meshwright.spec import ClusterSpec

NODE_DISK_GB = 100
QUOTAS_PAGE = "https://console.cloud.google.com/iam-admin/quotas?usage=USED&project={project}"


@dataclass(frozen=True)
class Available:
    """One regional quota as Compute's regions.get reports it."""

    limit: float
    usage: float

    @property
    def free(self) -> float:
        return max(self.limit - self.usage, 0.0)


def asked(clusters: Iterable[ClusterSpec], cpus: Mapping[str, int]) -> dict[str, dict[str, float]]:
    """Region -> metric -> what these clusters' nodes take; `cpus` maps a machine type to its vCPUs."""
    regions: dict[str, dict[str, float]] = {}
    for c in clusters:
        region = regions.setdefault(c.region, {})
        for metric, amount in (
            ("CPUS", c.total_nodes * cpus[c.machine_type]),
            ("IN_USE_ADDRESSES", c.total_nodes),
            ("SSD_TOTAL_GB", c.total_nodes * NODE_DISK_GB),
        ):
            region[metric] = region.get(metric, 0.0) + amount
    return regions


def shortfalls(
    wanted: Mapping[str, Mapping[str, float]], available: Mapping[str, Mapping[str, Available]]
) -> list[str]:
    """One line per region and metric that cannot hold what is wanted: region, metric, asked, available."""
    lines = []
    for region in sorted(wanted):
        for metric, amount in sorted(wanted[region].items()):
            quota = available.get(region, {}).get(metric)
            if quota is not None and amount > quota.free:
                lines.append(
                    f"{region} {metric}: the spec asks {amount:g}, {quota.free:g} available "
                    f"(limit {quota.limit:g}, in use {quota.usage:g})"
                )
    return lines


def quota_message(lines: list[str], project: str) -> str:
    return (
        f"not enough regional quota for the new clusters: {'; '.join(lines)}. Ask for more at "
        f"{QUOTAS_PAGE.format(project=project)}, or use fewer or smaller nodes"
    )
