"""GKE clusters: create (or adopt), wait until RUNNING, find, delete, wait until gone.

Every task looks before it acts, so a rerun adopts what an earlier run created. Polling tasks
are never cached: a new run always re-reads the world.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from google.cloud import container_v1
from prefect import get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE, RUN_ID, TASK_SOURCE

from meshwright import clients, naming
from meshwright.clients import MeshwrightTarget
from meshwright.errors import Conflict, NotFound, OperationFailed, TransientError
from meshwright.models import ClusterAccess, ClusterRef, CreateResult, Timing
from meshwright.naming import EXPIRES_LABEL, MESH_LABEL
from meshwright.spec import ClusterSpec, MeshSpec
from meshwright.status import custom_mode, get_network, list_clusters, mesh_clusters
from tasks.common import RETRYING, Clock

Status = container_v1.Cluster.Status
WAIT_TIMEOUT = 45 * 60.0
RELEASE_CHANNEL = container_v1.ReleaseChannel.Channel.REGULAR


def _parent(project: str, location: str) -> str:
    return f"projects/{project}/locations/{location}"


def cluster_request(
    spec: MeshSpec, c: ClusterSpec, *, expires: int | None, custom_network: bool = False
) -> container_v1.Cluster:
    """The GKE create request: VPC-native, our node tag and labels, release channel, workload identity.

    `nodes` is per zone (GKE's initialNodeCount). On a custom mode network, a cluster that names no
    subnetwork asks GKE to make one (createSubnetwork): GKE refuses a create with neither.
    """
    config = container_v1.NodeConfig(machine_type=c.machine_type, tags=[naming.node_tag(spec.name)])
    if c.service_account:
        config.service_account = c.service_account
    pool = container_v1.NodePool(name="default-pool", initial_node_count=c.nodes, config=config)
    policy = container_v1.IPAllocationPolicy(use_ip_aliases=True, cluster_ipv4_cidr_block=c.pod_cidr or "")
    if c.services_cidr:
        policy.services_ipv4_cidr_block = c.services_cidr
    if custom_network and not c.subnetwork:
        policy.create_subnetwork = True
    return container_v1.Cluster(
        name=c.name,
        description=f"meshwright mesh {spec.name}",
        network=spec.network,
        subnetwork=c.subnetwork or "",
        node_pools=[pool],
        ip_allocation_policy=policy,
        resource_labels=naming.resource_labels(
            spec.name, c.labels, expires=expires, ttl_seconds=spec.ttl_seconds, keep_root=spec.istio.keep_root
        ),
        release_channel=container_v1.ReleaseChannel(channel=RELEASE_CHANNEL),
        workload_identity_config=container_v1.WorkloadIdentityConfig(
            workload_pool=f"{spec.project}.svc.id.goog"
        ),
    )


def get_cluster(
    target: MeshwrightTarget, project: str, location: str, name: str, *, step: str
) -> container_v1.Cluster | None:
    cloud = clients.cloud(target)
    try:
        with cloud.call(cluster=name, step=step):
            return cloud.container.get_cluster(name=f"{_parent(project, location)}/clusters/{name}")
    except NotFound:
        return None


def _adopt(spec: MeshSpec, existing: container_v1.Cluster, target: MeshwrightTarget) -> None:
    """Ours and usable: adopt it. Not ours, or on its way out: say so."""
    name = existing.name
    owner = existing.resource_labels.get(MESH_LABEL)
    if owner != spec.name:
        raise Conflict(
            f"a cluster named {name!r} already exists in {existing.location} without the label "
            f"{MESH_LABEL}={spec.name} (it is not this mesh's); rename the cluster in the spec or remove it",
            cluster=name,
            step="create_cluster",
        )
    if existing.status in (Status.ERROR, Status.STOPPING):
        if existing.status == Status.ERROR:
            _start_delete(target, spec.project, existing.location, name, step="create_cluster")
        raise TransientError(
            f"an earlier attempt left this cluster {existing.status.name}; it is being deleted and will be created again",
            cluster=name,
            step="create_cluster",
        )


def _converge_labels(
    spec: MeshSpec, existing: container_v1.Cluster, target: MeshwrightTarget, *, expires: int | None
) -> str:
    """An adopted cluster gets the labels the spec gives it now (the user's, the expiry of the
    spec's ttl, keep-root), through GKE's setResourceLabels with the current label fingerprint."""
    wanted = naming.resource_labels(
        spec.name,
        spec.cluster(existing.name).labels,
        expires=expires,
        ttl_seconds=spec.ttl_seconds,
        keep_root=spec.istio.keep_root,
    )
    if dict(existing.resource_labels) == wanted or existing.status != Status.RUNNING:
        return ""
    request = container_v1.SetLabelsRequest(
        name=f"{_parent(spec.project, existing.location)}/clusters/{existing.name}",
        resource_labels=wanted,
        label_fingerprint=existing.label_fingerprint,
    )
    cloud = clients.cloud(target)
    with cloud.call(cluster=existing.name, step="create_cluster"):
        cloud.container.set_labels(request=request)
    return "; labels set to the spec's"


@task(
    task_run_name="create_cluster[{name}]",
    persist_result=True,
    cache_policy=(INPUTS - "expires") + TASK_SOURCE + RUN_ID,
    **RETRYING,
)
def create_cluster(
    spec: MeshSpec, name: str, *, target: MeshwrightTarget, expires: int | None
) -> CreateResult:
    """Create one GKE cluster of the mesh, or adopt it if this mesh already has it.

    Args:
        spec: the validated mesh spec.
        name: which of its clusters.
        target: where to build it.
        expires: unix time for the expiry label, when the spec has a ttl.
    """
    clock, c, log = Clock("create_cluster", name), spec.cluster(name), get_run_logger()
    existing = get_cluster(target, spec.project, c.location, name, step="create_cluster")
    if existing is not None:
        _adopt(spec, existing, target)
        relabelled = _converge_labels(spec, existing, target, expires=expires)
        log.info("cluster %s exists (%s): adopted%s", name, existing.status.name, relabelled)
        return CreateResult(name=name, location=c.location, adopted=True, timing=clock.done())
    network = get_network(target, spec.project, spec.network, step="create_cluster")
    request = cluster_request(
        spec, c, expires=expires, custom_network=network is not None and custom_mode(network)
    )
    parent = _parent(spec.project, c.location)
    _hold_create_slot(target, name)
    clock = Clock("create_cluster", name)  # from the request: the time a slot took is not GKE's
    try:
        op = _request_create(target, parent, request)
    except BaseException:  # no operation in flight: its slot is free again
        clients.cloud(target).creates.release(name)
        raise
    log.info("creating cluster %s in %s (operation %s)", name, c.location, op.name)
    return CreateResult(
        name=name, location=c.location, operation=f"{parent}/operations/{op.name}", timing=clock.done()
    )


def _hold_create_slot(target: MeshwrightTarget, name: str) -> None:
    """One of the process's create slots (settings' max_creates_in_flight), held until the wait ends."""
    creates = clients.cloud(target).creates
    if not creates.try_hold(name):
        get_run_logger().info(
            "cluster %s waits for one of the %d creates in flight to finish", name, creates.limit
        )
        creates.hold(name)


def _request_create(
    target: MeshwrightTarget, parent: str, request: container_v1.Cluster
) -> container_v1.Operation:
    cloud, name = clients.cloud(target), request.name
    try:
        with cloud.call(cluster=name, step="create_cluster"):
            return cloud.container.create_cluster(parent=parent, cluster=request)
    except Conflict:  # created by someone else between our look and our create: look again
        raise TransientError(
            "the cluster appeared while we were creating it", cluster=name, step="create_cluster"
        ) from None


@task(task_run_name="wait_cluster[{created.name}]", cache_policy=NO_CACHE, **RETRYING)
def wait_cluster(
    spec: MeshSpec, created: CreateResult, *, target: MeshwrightTarget, timeout: float = WAIT_TIMEOUT
) -> ClusterAccess:
    """Wait until the cluster is RUNNING; return how to reach it (no credentials). The create's
    slot is given back when the wait ends, however it ends."""
    try:
        return _wait_running(spec, created, target=target, timeout=timeout)
    finally:
        clients.cloud(target).creates.release(created.name)


class _Listing:
    """The project's clusters as one list call saw them, shared by every wait of the process for a
    poll interval: fifty waits cost one call a poll instead of fifty, and the creates still to be
    requested do not queue behind their polls for the process's API slots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[int, str], tuple[float, dict[str, container_v1.Cluster]]] = {}

    def clusters(
        self, target: MeshwrightTarget, project: str, *, newer_than: float
    ) -> tuple[float, dict[str, container_v1.Cluster]]:
        """(when it was taken, the clusters by name): a listing taken after `newer_than`, made now
        when the last one is older (one caller lists while the others wait for its answer)."""
        key = (id(clients.cloud(target)), project)
        with self._lock:
            taken, found = self._seen.get(key, (0.0, {}))
            if taken <= newer_than:
                taken = time.monotonic()
                found = {c.name: c for c in list_clusters(target, project, step="wait_cluster")}
                self._seen[key] = (taken, found)
            return taken, found


_LISTING = _Listing()


def _wait_running(
    spec: MeshSpec, created: CreateResult, *, target: MeshwrightTarget, timeout: float
) -> ClusterAccess:
    clock, name, poll = Clock("wait_cluster", created.name), created.name, clients.cloud(target).poll_seconds
    began = time.monotonic()
    while time.monotonic() < began + timeout:
        taken, found = _LISTING.clusters(target, spec.project, newer_than=time.monotonic() - poll)
        cluster = found.get(name)
        if cluster is not None and cluster.status == Status.RUNNING:
            return _access(cluster, clock, started=created.timing.started)
        if cluster is not None and cluster.status in (Status.ERROR, Status.STOPPING, Status.DEGRADED):
            raise OperationFailed(_failure(target, created, cluster), cluster=name, step="wait_cluster")
        if cluster is None and taken > began:  # listed after its create was answered, and not there
            raise NotFound(
                "the cluster disappeared while we waited for it", cluster=name, step="wait_cluster"
            )
        time.sleep(poll)
    raise TransientError(f"not RUNNING after {timeout:.0f}s", cluster=name, step="wait_cluster")


def _failure(target: MeshwrightTarget, created: CreateResult, cluster: container_v1.Cluster) -> str:
    """Why the cluster failed: its create operation's error when there is one (GKE's words for a
    quota or a bad range), else the cluster's status message."""
    if created.operation:
        cloud = clients.cloud(target)
        with cloud.call(cluster=cluster.name, step="wait_cluster"):
            op = cloud.container.get_operation(name=created.operation)
        if op.error.message or op.status_message:
            return str(op.error.message or op.status_message)
    return f"cluster is {cluster.status.name}: {cluster.status_message or cluster.status.name}"


def _access(cluster: container_v1.Cluster, clock: Clock, *, started: float) -> ClusterAccess:
    timing = clock.done()
    timing.started = started  # from the create request to RUNNING: what the report's column means
    return access_of(cluster, timing)


def access_of(cluster: container_v1.Cluster, timing: Timing) -> ClusterAccess:
    """How to reach a cluster, read off GKE's record of it (no credentials)."""
    return ClusterAccess(
        name=cluster.name,
        location=cluster.location,
        status=cluster.status.name,
        endpoint=cluster.endpoint,
        ca_certificate=cluster.master_auth.cluster_ca_certificate,
        pod_cidr=cluster.cluster_ipv4_cidr,
        services_cidr=cluster.services_ipv4_cidr,
        timing=timing,
    )


def _ref(c: container_v1.Cluster) -> ClusterRef:
    created = c.create_time and datetime.fromisoformat(c.create_time.replace("Z", "+00:00")).timestamp()
    return ClusterRef(
        name=c.name,
        location=c.location,
        status=c.status.name,
        labels=dict(c.resource_labels),
        created=created or None,
    )


@task(cache_policy=NO_CACHE, **RETRYING)
def find_mesh_clusters(target: MeshwrightTarget, project: str, mesh: str) -> list[ClusterRef]:
    """Every cluster of the project labelled as this mesh's, wherever it is."""
    return [_ref(c) for c in mesh_clusters(target, project, mesh, step="find_mesh_clusters")]


@task(cache_policy=NO_CACHE, **RETRYING)
def find_expired_clusters(target: MeshwrightTarget, project: str, *, now: float) -> list[ClusterRef]:
    """Clusters of any mesh whose expiry label has passed."""
    found = []
    for c in list_clusters(target, project, step="find_expired_clusters"):
        expires = c.resource_labels.get(EXPIRES_LABEL, "")
        if MESH_LABEL in c.resource_labels and expires.isdigit() and int(expires) <= now:
            found.append(_ref(c))
    return found


def _start_delete(
    target: MeshwrightTarget, project: str, location: str, name: str, *, step: str
) -> str | None:
    cloud = clients.cloud(target)
    try:
        with cloud.call(cluster=name, step=step):
            op = cloud.container.delete_cluster(name=f"{_parent(project, location)}/clusters/{name}")
    except NotFound:
        return None
    return str(op.name)


@task(task_run_name="delete_cluster[{name}]", cache_policy=NO_CACHE, **RETRYING)
def delete_cluster(target: MeshwrightTarget, project: str, location: str, name: str) -> str | None:
    """Start deleting a cluster; one that is already gone counts as deleted. A cluster that is busy
    with another operation (GKE's 400 'is currently ...') is retried."""
    cluster = get_cluster(target, project, location, name, step="delete_cluster")
    if cluster is None or cluster.status == Status.STOPPING:
        return None
    operation = _start_delete(target, project, location, name, step="delete_cluster")
    get_run_logger().info("deleting cluster %s in %s", name, location)
    return operation


@task(task_run_name="wait_deleted[{name}]", cache_policy=NO_CACHE, **RETRYING)
def wait_deleted(
    target: MeshwrightTarget, project: str, location: str, name: str, *, timeout: float = WAIT_TIMEOUT
) -> str:
    """Return once the cluster answers 404."""
    poll, deadline = clients.cloud(target).poll_seconds, time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get_cluster(target, project, location, name, step="wait_deleted") is None:
            return name
        time.sleep(poll)
    raise TransientError(f"still present after {timeout:.0f}s", cluster=name, step="wait_deleted")
