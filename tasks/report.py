"""The provision report as a Prefect artifact: a table a person reads in the UI."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from meshwright.models import ProvisionReport


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


@task(cache_policy=NO_CACHE)
def publish_report(report: ProvisionReport) -> str:
    """Publish the cluster table under a key per mesh, so the UI shows its history."""
    key = f"mesh-{report.mesh}"[:60].lower()
    create_table_artifact(
        table=cluster_rows(report),
        key=key,
        description=f"Mesh {report.mesh} on {report.target} ({report.project}): firewall {report.firewall.name} "
        f"{report.firewall.action}; provisioned in {report.seconds:.1f}s",
    )
    return key
