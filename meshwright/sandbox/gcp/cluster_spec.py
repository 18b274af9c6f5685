"""A GKE cluster create request: validated whole, then built into a record. Pure functions.

`read_request` checks a `{"cluster": {...}}` body as GKE does (400 INVALID_ARGUMENT with Google's
messages) and returns typed values; `build_cluster` turns those and the model's allocations (pod
range, link, time) into the record that is stored. Nothing here reads or changes state.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshwright.sandbox.clock import rfc3339_micros
from meshwright.sandbox.gcp import catalog, validate
from meshwright.sandbox.gcp import errors as e
from meshwright.sandbox.gcp.models import ClusterRecord
from meshwright.sandbox.gcp.validate import Fields

MASTER_VERSION = "1.32.4-gke.1106000"
SERVICES_RANGE = "34.118.224.0/20"  # GKE-managed services range, reused by every cluster (GKE >= 1.29)
RELEASE_CHANNELS = ["UNSPECIFIED", "RAPID", "REGULAR", "STABLE", "EXTENDED"]
MAX_NODE_POOLS = 15
MAX_TAGS = 64
MIN_DISK_GB, MAX_DISK_GB = 10, 65536
DEFAULT_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
CLUSTER_MESSAGE = "google.container.v1.Cluster"


# -- validate ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolRequest:
    name: str
    count: int
    config: dict[str, Any]  # only the fields the request gave, typed


@dataclass(frozen=True)
class Placement:
    """Where a validated request lands: its subnetwork and the secondary ranges GKE adds there."""

    subnetwork: str
    pods_range: str
    services_range: str  # "" when the services use GKE's managed range
    created_subnetwork: bool


@dataclass(frozen=True)
class ClusterRequest:
    """A create request that passed every check: typed values, nothing allocated yet."""

    name: str
    description: str
    network: str
    subnetwork: str
    create_subnetwork: bool
    subnetwork_name: str
    pools: list[PoolRequest]
    node_config: dict[str, Any]
    requested_range: str
    services_range: str
    channel: str
    labels: dict[str, str]
    workload_pool: str


def read_request(body: Any, *, project: str) -> ClusterRequest:
    """The `{"cluster": {...}}` body of a create, checked as GKE checks it (400 INVALID_ARGUMENT)."""
    root = Fields.root(body, "google.container.v1.CreateClusterRequest")
    spec = root.message("cluster", CLUSTER_MESSAGE)
    if not spec.raw("name"):
        raise e.invalid("Cluster.name must be set.")
    name = validate.gke_name(spec.raw("name"), "cluster.name")
    policy = spec.message("ipAllocationPolicy", "google.container.v1.IPAllocationPolicy")
    network = spec.text("network") or "default"
    return ClusterRequest(
        name=name,
        description=spec.text("description"),
        network=network.rsplit("/", 1)[-1],
        subnetwork=spec.text("subnetwork").rsplit("/", 1)[-1],
        create_subnetwork=policy.boolean("createSubnetwork"),
        subnetwork_name=_subnetwork_name(policy),
        pools=_read_pools(spec),
        node_config=_read_node_config(spec.message("nodeConfig", "google.container.v1.NodeConfig")),
        requested_range=_read_pod_range(spec, policy),
        services_range=_read_cidr(policy, "servicesIpv4CidrBlock", SERVICES_RANGE),
        channel=_read_channel(spec),
        labels=validate.labels(spec.mapping("resourceLabels"), "cluster.resource_labels"),
        workload_pool=_read_workload_pool(spec, project),
    )


def _subnetwork_name(policy: Fields) -> str:
    name = policy.text("subnetworkName")
    if name and not validate.COMPUTE_NAME.fullmatch(name):
        raise e.invalid(
            f"Invalid value for field '{policy.where('subnetworkName')}': {validate.shown(name)}."
        )
    return name


def _read_pools(spec: Fields) -> list[PoolRequest]:
    given = spec.messages("nodePools", "google.container.v1.NodePool", limit=MAX_NODE_POOLS)
    initial = spec.integer("initialNodeCount")
    if initial and given:
        raise e.invalid("Cannot specify both initial_node_count and node_pools.")
    if not given:
        return [PoolRequest("default-pool", initial or 3, {})]
    return [_read_pool(pool) for pool in given]


def _read_pool(pool: Fields) -> PoolRequest:
    name = pool.raw("name") or "default-pool"
    validate.gke_name(name, f"{pool.path}.name")
    count = pool.integer("initialNodeCount")
    if count < 1:
        raise e.invalid(f"Node pool {name!r}: initial_node_count must be at least 1.")
    config = _read_node_config(pool.message("config", "google.container.v1.NodeConfig"))
    return PoolRequest(name, count, config)


def _read_node_config(given: Fields) -> dict[str, Any]:
    readers: dict[str, Callable[[str], Any]] = {
        "machineType": lambda key: given.text(key, limit=100),
        "imageType": lambda key: given.text(key, limit=100),
        "diskSizeGb": lambda key: _disk_size(given, key),
        "tags": lambda key: _tags(given, key),
        "oauthScopes": lambda key: given.texts(key, limit=50),
        "serviceAccount": lambda key: given.text(key, limit=254),
        "diskType": lambda key: given.text(key, limit=100),
        "labels": lambda key: validate.labels(given.mapping(key), given.where(key)),
    }
    return {key: read(key) for key, read in readers.items() if given.raw(key) not in (None, "", 0, [], {})}


def _disk_size(given: Fields, key: str) -> int:
    size = given.integer(key)
    if not MIN_DISK_GB <= size <= MAX_DISK_GB:
        raise e.invalid(
            f"Invalid value for field '{given.where(key)}': {size}. Must be {MIN_DISK_GB}-{MAX_DISK_GB}."
        )
    return size


def _tags(given: Fields, key: str) -> list[str]:
    """Network tags: at most 64, each an RFC 1035 label as Compute requires."""
    tags = given.texts(key, limit=MAX_TAGS)
    for tag in tags:
        if not validate.COMPUTE_NAME.fullmatch(tag):
            raise e.invalid(f"Invalid value for field '{given.where(key)}': {validate.shown(tag)}.")
    return tags


def _read_workload_pool(spec: Fields, project: str) -> str:
    config = spec.message("workloadIdentityConfig", "google.container.v1.WorkloadIdentityConfig")
    pool = config.text("workloadPool", limit=200)
    if pool and pool != f"{project}.svc.id.goog":
        raise e.invalid(
            f"Invalid value for field '{config.where('workloadPool')}': {validate.shown(pool)}. "
            f'Must be "{project}.svc.id.goog".'
        )
    return pool


def _read_pod_range(spec: Fields, policy: Fields) -> str:
    top, block = spec.text("clusterIpv4Cidr"), policy.text("clusterIpv4CidrBlock")
    if top and block:
        raise e.invalid("clusterIpv4Cidr must be blank when ipAllocationPolicy.clusterIpv4CidrBlock is set.")
    requested = block or top
    if requested.startswith("/"):
        prefix = requested[1:]
        if not prefix.isdigit() or not 9 <= int(prefix) <= 21:
            raise e.invalid(
                f"Invalid value for field 'cluster.ip_allocation_policy.cluster_ipv4_cidr_block': '{requested}'."
            )
    elif requested:
        return str(_check_cidr(requested, "cluster.ip_allocation_policy.cluster_ipv4_cidr_block"))
    return requested


def _read_cidr(policy: Fields, key: str, default: str) -> str:
    return str(_check_cidr(policy.text(key) or default, policy.where(key)))


def _check_cidr(cidr: str, field: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        raise e.invalid(f"Invalid value for field '{field}': {validate.shown(cidr)}.") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise e.invalid(f"Invalid value for field '{field}': '{cidr}' is not IPv4.")
    return net


def _read_channel(spec: Fields) -> str:
    value = spec.message("releaseChannel", "google.container.v1.ReleaseChannel").raw("channel")
    if value is None:
        return "REGULAR"
    # Enums arrive as integers (google-cloud clients) or strings (discovery client).
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(RELEASE_CHANNELS):
        return RELEASE_CHANNELS[value]
    if isinstance(value, str) and value in RELEASE_CHANNELS:
        return value
    raise e.invalid(f"Invalid value at 'cluster.release_channel.channel' ({validate.shown(value)})")


# -- build ---------------------------------------------------------------------------------------


def node_config(given: dict[str, Any]) -> dict[str, Any]:
    """A node config as GKE reports it: what was given, GKE's defaults for the rest."""
    return {
        "machineType": given.get("machineType") or "e2-medium",
        "diskSizeGb": given.get("diskSizeGb") or 100,
        "tags": list(given.get("tags") or []),
        "labels": dict(given.get("labels") or {}),
        "oauthScopes": list(given.get("oauthScopes") or DEFAULT_SCOPES),
        "serviceAccount": given.get("serviceAccount") or "default",
        "diskType": given.get("diskType") or "pd-balanced",
        "imageType": given.get("imageType") or "COS_CONTAINERD",
    }


def build_cluster(
    req: ClusterRequest,
    *,
    project: str,
    location: str,
    pod_range: str,
    explicit: bool,
    placement: Placement,
    link: str,
    created: float,
) -> ClusterRecord:
    """The new PROVISIONING cluster record of a validated request and its allocations."""
    pools = [_build_pool(p, req.node_config, link) for p in req.pools]
    view = {
        "name": req.name,
        "description": req.description,
        "location": location,
        "zone": location,
        "locations": catalog.node_zones(location),
        "network": req.network,
        "subnetwork": placement.subnetwork,
        "nodeConfig": pools[0]["config"],  # GKE reports the default pool's configuration at the top
        "nodePools": pools,
        # initialNodeCount is per zone: a regional cluster's pool of 3 is 9 nodes.
        "currentNodeCount": sum(p["initialNodeCount"] for p in pools) * len(catalog.node_zones(location)),
        "ipAllocationPolicy": _ip_policy(pod_range, req.services_range, placement),
        "clusterIpv4Cidr": pod_range,
        "servicesIpv4Cidr": req.services_range,
        "resourceLabels": dict(req.labels),
        "labelFingerprint": secrets.token_hex(4),
        "releaseChannel": {"channel": req.channel},
        "workloadIdentityConfig": {"workloadPool": req.workload_pool} if req.workload_pool else {},
        **_versions(),
        "status": "PROVISIONING",
        "createTime": rfc3339_micros(created),
        "id": secrets.token_hex(16),
        "selfLink": link,
    }
    return ClusterRecord(project, view, explicit)


def _versions() -> dict[str, str]:
    return {
        "initialClusterVersion": MASTER_VERSION,
        "currentMasterVersion": MASTER_VERSION,
        "currentNodeVersion": MASTER_VERSION,
    }


def _ip_policy(pod_range: str, services: str, placement: Placement) -> dict[str, Any]:
    names: dict[str, Any] = {"clusterSecondaryRangeName": placement.pods_range}
    if placement.services_range:
        names["servicesSecondaryRangeName"] = placement.services_range
    if placement.created_subnetwork:
        names |= {"createSubnetwork": True, "subnetworkName": placement.subnetwork}
    return {
        **names,
        "useIpAliases": True,
        "clusterIpv4CidrBlock": pod_range,
        "clusterIpv4Cidr": pod_range,
        "servicesIpv4CidrBlock": services,
        "servicesIpv4Cidr": services,
        "stackType": "IPV4",
    }


def _build_pool(pool: PoolRequest, default: dict[str, Any], cluster_link: str) -> dict[str, Any]:
    return {
        "name": pool.name,
        "config": node_config({**default, **pool.config}),
        "initialNodeCount": pool.count,
        "status": "PROVISIONING",
        "version": MASTER_VERSION,
        "selfLink": f"{cluster_link}/nodePools/{pool.name}",
    }
