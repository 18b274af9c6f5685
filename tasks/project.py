"""Preflight reads of the project itself: regional quotas and machine types (Compute), the nodes'
service account (IAM). They create nothing; they fail a run before its first create, naming what to do."""

from __future__ import annotations

from google.cloud import compute_v1
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from meshwright import clients, quotas
from meshwright.clients import MeshwrightTarget
from meshwright.errors import NotFound, PermanentError, PermissionDenied, QuotaExceeded, ServiceDisabled
from meshwright.spec import ClusterSpec, MeshSpec
from tasks.common import RETRYING

ACT_AS_ROLE = "roles/iam.serviceAccountUser"


def _region(cloud: clients.Cloud, project: str, region: str) -> compute_v1.Region:
    with cloud.call(cluster=None, step="check_quotas"):
        return cloud.regions.get(project=project, region=region)


def _cpus(cloud: clients.Cloud, project: str, c: ClusterSpec, zone: str) -> int:
    try:
        with cloud.call(cluster=c.name, step="check_quotas"):
            return int(
                cloud.machine_types.get(project=project, zone=zone, machine_type=c.machine_type).guest_cpus
            )
    except NotFound:
        raise PermanentError(
            f"machine type {c.machine_type!r} does not exist in {zone}; set another `machine_type`",
            cluster=c.name,
            step="check_quotas",
        ) from None


@task(cache_policy=NO_CACHE, **RETRYING)
def check_quotas(
    spec: MeshSpec, *, target: MeshwrightTarget, existing: list[str]
) -> dict[str, dict[str, float]]:
    """Preflight: the clusters to create fit in their regions' quotas (limit minus usage), counting
    nodes x the machine type's vCPUs x the zones of a regional cluster. Clusters in `existing` are
    adopted, not created, and already count in the usage. Returns what the new clusters ask.

    Raises:
        QuotaExceeded: naming every region and metric short, what the spec asks and what is available.
    """
    cloud, new = clients.cloud(target), [c for c in spec.clusters if c.name not in set(existing)]
    regions = {region: _region(cloud, spec.project, region) for region in sorted({c.region for c in new})}
    cpus: dict[str, int] = {}
    for c in new:
        zone = c.location if c.zone_count == 1 else regions[c.region].zones[0].rsplit("/", 1)[-1]
        cpus.setdefault(c.machine_type, _cpus(cloud, spec.project, c, zone))
    wanted = quotas.asked(new, cpus)
    available = {
        name: {q.metric: quotas.Available(q.limit, q.usage) for q in region.quotas}
        for name, region in regions.items()
    }
    short = quotas.shortfalls(wanted, available)
    if short:
        raise QuotaExceeded(quotas.quota_message(short, spec.project), step="check_quotas")
    get_run_logger().info("regional quota holds the new clusters: %s", wanted)
    return wanted


@task(cache_policy=NO_CACHE, **RETRYING)
def check_service_accounts(spec: MeshSpec, *, target: MeshwrightTarget) -> list[str]:
    """Preflight: the nodes' service accounts exist (the project's Compute Engine default one unless a
    cluster names another). Creating a cluster needs iam.serviceAccounts.actAs on them, which
    roles/iam.serviceAccountUser grants along with the iam.serviceAccounts.get this check makes.

    Returns the accounts checked; none when the project has not enabled the IAM API (GKE then says
    whether an account exists when the cluster is created).
    """
    cloud = clients.cloud(target)
    default = None
    if any(c.service_account is None for c in spec.clusters):
        with cloud.call(cluster=None, step="check_service_accounts"):
            default = cloud.projects.get(project=spec.project).default_service_account
    accounts = sorted({c.service_account or str(default) for c in spec.clusters})
    try:
        for email in accounts:
            _check_account(cloud, spec.project, email)
    except ServiceDisabled as e:
        get_run_logger().warning("the nodes' service accounts are not checked: %s", e.message)
        return []
    return accounts


def _check_account(cloud: clients.Cloud, project: str, email: str) -> None:
    step = "check_service_accounts"
    try:
        with cloud.call(cluster=None, step=step):
            cloud.iam.get_service_account(project="-", email=email)
    except NotFound:
        raise PermanentError(
            f"the nodes' service account {email} does not exist in project {project}; create it, or name "
            "another in clusters[].service_account (GKE refuses the create without it)",
            step=step,
        ) from None
    except ServiceDisabled:
        raise
    except PermissionDenied as e:
        raise PermissionDenied(
            f"cannot read the nodes' service account {email} ({e.message}); creating a cluster needs "
            f"iam.serviceAccounts.actAs on it: grant {ACT_AS_ROLE} on {email} to whoever runs meshwright",
            step=step,
        ) from None
