"""State and verbs of the emulated GKE v1 API: clusters and their operations.

State is plain JSON-able dicts keyed by project and location, so that it persists as it is.
Fields starting with `_` are the sandbox's own bookkeeping and never leave the emulator.
Operations advance over wall-clock time: `advance()` moves every due operation to DONE.
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from meshwright.sandbox.clock import rfc3339_micros
from meshwright.sandbox.faults import Faults
from meshwright.sandbox.gcp import errors as e
from meshwright.sandbox.gcp.common import operation_id, public
from meshwright.sandbox.settings import Latency

MASTER_VERSION = "1.32.4-gke.1106000"
SERVICES_RANGE = "34.118.224.0/20"  # GKE-managed services range, reused by every cluster (GKE >= 1.29)
POD_POOL = ipaddress.IPv4Network("10.0.0.0/8")
RELEASE_CHANNELS = ["UNSPECIFIED", "RAPID", "REGULAR", "STABLE", "EXTENDED"]


class ClusterHooks(Protocol):
    """What the world does when a cluster's control plane comes up or goes away."""

    def prepare(self, cluster_id: str) -> tuple[int, str]:
        """Allocate the endpoint port and the CA for a new cluster: (port, base64 PEM CA)."""
        ...

    def running(self, cluster: dict[str, Any]) -> None: ...

    def deleted(self, cluster: dict[str, Any]) -> None: ...


def cluster_id(project: str, location: str, name: str) -> str:
    return f"{project}/{location}/{name}"


def _enum(value: Any, names: list[str], field: str) -> str:
    """Enums arrive as integers (google-cloud clients) or strings (discovery client)."""
    if isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str) and value in names:
        return value
    raise e.invalid(f"Invalid value at '{field}' ({value!r})")


class Gke:
    """The GKE v1 clusters and operations of every project."""

    def __init__(
        self,
        state: dict[str, Any],
        *,
        latency: Latency,
        faults: Faults,
        hooks: ClusterHooks,
        base_url: Callable[[], str],
        now: Callable[[], float] = time.time,
    ) -> None:
        self.clusters: dict[str, dict[str, Any]] = state.setdefault("clusters", {})
        self.operations: dict[str, dict[str, Any]] = state.setdefault("operations", {})
        self.latency, self.faults, self.hooks, self.now = latency, faults, hooks, now
        self._base_url = base_url
        self.lock = threading.RLock()

    # -- clusters ----------------------------------------------------------------------------

    def create_cluster(
        self, project: str, location: str, body: dict[str, Any], *, network_exists: Callable[[str], bool]
    ) -> dict[str, Any]:
        spec = (body or {}).get("cluster")
        if not isinstance(spec, dict) or not spec.get("name"):
            raise e.invalid("Cluster.name must be set.")
        name = spec["name"]
        key = cluster_id(project, location, name)
        if key in self.clusters:
            raise e.GcpError(409, e.CLUSTER_EXISTS.format(project=project, location=location, name=name))
        network = spec.get("network") or "default"
        if not network_exists(network.rsplit("/", 1)[-1]):
            raise e.invalid(e.NETWORK_MISSING.format(network=network))
        cluster = self._new_cluster(project, location, spec, network=network.rsplit("/", 1)[-1])
        op = self._new_operation(project, location, "CREATE_CLUSTER", cluster, self.latency.create)
        op["_fail"] = self.faults.on_operation(api="gke", operation="CREATE_CLUSTER", cluster=name)
        if op["_fail"] is None:
            op["_fail"] = self._overlap_error(cluster)
        self.clusters[key] = cluster
        return self.operation_view(op)

    def _new_cluster(
        self, project: str, location: str, spec: dict[str, Any], *, network: str
    ) -> dict[str, Any]:
        name = spec["name"]
        if spec.get("initialNodeCount") and spec.get("nodePools"):
            raise e.invalid("Cannot specify both initial_node_count and node_pools.")
        policy = dict(spec.get("ipAllocationPolicy") or {})
        if spec.get("clusterIpv4Cidr") and policy.get("clusterIpv4CidrBlock"):
            raise e.invalid(
                "clusterIpv4Cidr must be blank when ipAllocationPolicy.clusterIpv4CidrBlock is set."
            )
        requested = policy.get("clusterIpv4CidrBlock") or spec.get("clusterIpv4Cidr") or ""
        pod_range, explicit = self._pod_range(project, network, requested)
        services = policy.get("servicesIpv4CidrBlock") or SERVICES_RANGE
        self._check_cidr(services, "servicesIpv4CidrBlock")
        channel = _enum(
            (spec.get("releaseChannel") or {}).get("channel", "REGULAR"),
            RELEASE_CHANNELS,
            "cluster.release_channel.channel",
        )
        pools = self._node_pools(spec, self._node_config(spec.get("nodeConfig") or {}), project, location)
        node_config = pools[0]["config"]  # GKE reports the default pool's configuration at the top
        created = self.now()
        return {
            "name": name,
            "description": spec.get("description", ""),
            "location": location,
            "zone": location,
            "locations": [location]
            if location.count("-") == 2
            else [f"{location}-a", f"{location}-b", f"{location}-c"],
            "network": network,
            "subnetwork": spec.get("subnetwork") or network,
            "nodeConfig": node_config,
            "nodePools": pools,
            "currentNodeCount": sum(p["initialNodeCount"] for p in pools),
            "ipAllocationPolicy": {
                "useIpAliases": True,
                "clusterIpv4CidrBlock": pod_range,
                "clusterIpv4Cidr": pod_range,
                "servicesIpv4CidrBlock": services,
                "servicesIpv4Cidr": services,
                "stackType": "IPV4",
            },
            "clusterIpv4Cidr": pod_range,
            "servicesIpv4Cidr": services,
            "resourceLabels": dict(spec.get("resourceLabels") or {}),
            "labelFingerprint": secrets.token_hex(4),
            "releaseChannel": {"channel": channel},
            "workloadIdentityConfig": dict(spec.get("workloadIdentityConfig") or {}),
            "initialClusterVersion": MASTER_VERSION,
            "currentMasterVersion": MASTER_VERSION,
            "currentNodeVersion": MASTER_VERSION,
            "status": "PROVISIONING",
            "createTime": rfc3339_micros(created),
            "id": secrets.token_hex(16),
            "selfLink": f"{self._base_url()}/v1/projects/{project}/locations/{location}/clusters/{name}",
            "_project": project,
            "_explicit_range": explicit,
        }

    def _node_config(self, given: dict[str, Any]) -> dict[str, Any]:
        return {
            "machineType": given.get("machineType") or "e2-medium",
            "diskSizeGb": int(given.get("diskSizeGb") or 100),
            "tags": list(given.get("tags") or []),
            "labels": dict(given.get("labels") or {}),
            "oauthScopes": list(
                given.get("oauthScopes") or ["https://www.googleapis.com/auth/cloud-platform"]
            ),
            "imageType": given.get("imageType") or "COS_CONTAINERD",
        }

    def _node_pools(
        self, spec: dict[str, Any], default: dict[str, Any], project: str, location: str
    ) -> list[dict[str, Any]]:
        given = spec.get("nodePools") or [
            {"name": "default-pool", "initialNodeCount": spec.get("initialNodeCount") or 3}
        ]
        pools = []
        for pool in given:
            count = int(pool.get("initialNodeCount") or 0)
            if count < 1:
                raise e.invalid(f"Node pool {pool.get('name')!r}: initial_node_count must be at least 1.")
            config = self._node_config({**default, **(pool.get("config") or {})})
            pools.append(
                {
                    "name": pool.get("name") or "default-pool",
                    "config": config,
                    "initialNodeCount": count,
                    "status": "PROVISIONING",
                    "version": MASTER_VERSION,
                    "selfLink": f"{self._base_url()}/v1/projects/{project}/locations/{location}/clusters/{spec['name']}/nodePools/{pool.get('name') or 'default-pool'}",
                }
            )
        return pools

    def _check_cidr(self, cidr: str, field: str) -> ipaddress.IPv4Network:
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            raise e.invalid(f"Invalid value for field '{field}': '{cidr}'.") from None
        if not isinstance(net, ipaddress.IPv4Network):
            raise e.invalid(f"Invalid value for field '{field}': '{cidr}' is not IPv4.")
        return net

    def _taken(
        self, project: str, network: str, *, exclude: str | None = None
    ) -> Iterator[tuple[str, ipaddress.IPv4Network]]:
        for key, c in self.clusters.items():
            if (
                key == exclude
                or c["_project"] != project
                or c["network"] != network
                or c["status"] == "ERROR"
            ):
                continue
            yield c["name"], ipaddress.IPv4Network(c["clusterIpv4Cidr"])

    def _pod_range(self, project: str, network: str, requested: str) -> tuple[str, bool]:
        if requested and not requested.startswith("/"):
            net = self._check_cidr(requested, "cluster.ip_allocation_policy.cluster_ipv4_cidr_block")
            return str(net), True
        prefix = int(requested.lstrip("/") or 14)
        if not 9 <= prefix <= 21:
            raise e.invalid(
                f"Invalid value for field 'cluster.ip_allocation_policy.cluster_ipv4_cidr_block': '/{prefix}'."
            )
        taken: list[ipaddress.IPv4Network] = [net for _, net in self._taken(project, network)]
        # Scan from the top of 10/8 so that users' explicit low ranges are rarely in the way.
        for candidate in reversed(list(POD_POOL.subnets(new_prefix=prefix))):
            if not any(candidate.overlaps(t) for t in taken):
                return str(candidate), False
        raise e.GcpError(429, "Insufficient IP space in 10.0.0.0/8 for a new pod range.")

    def _overlap_error(self, cluster: dict[str, Any]) -> str | None:
        if not cluster["_explicit_range"]:
            return None
        mine = ipaddress.IPv4Network(cluster["clusterIpv4Cidr"])
        key = cluster_id(cluster["_project"], cluster["location"], cluster["name"])
        for owner, other in self._taken(cluster["_project"], cluster["network"], exclude=key):
            if mine.overlaps(other):
                return e.OVERLAP.format(cidr=mine, other=other, owner=owner)
        return None

    def get_cluster(self, project: str, location: str, name: str) -> dict[str, Any]:
        return public(self._cluster(project, location, name))

    def _cluster(self, project: str, location: str, name: str) -> dict[str, Any]:
        cluster = self.clusters.get(cluster_id(project, location, name))
        if cluster is None:
            raise e.GcpError(404, e.CLUSTER_NOT_FOUND.format(project=project, location=location, name=name))
        return cluster

    def list_clusters(self, project: str, location: str) -> dict[str, Any]:
        found = [
            public(c)
            for c in self.clusters.values()
            if c["_project"] == project and location in ("-", c["location"])
        ]
        return {"clusters": sorted(found, key=lambda c: (c["location"], c["name"]))}

    def delete_cluster(self, project: str, location: str, name: str) -> dict[str, Any]:
        cluster = self._cluster(project, location, name)
        busy = self._running_operation(cluster)
        if busy is not None:
            verb = "creating" if busy["operationType"] == "CREATE_CLUSTER" else "deleting"
            raise e.failed_precondition(
                e.OPERATION_IN_PROGRESS.format(operation=busy["name"], verb=verb, name=name)
            )
        cluster["status"] = "STOPPING"
        op = self._new_operation(project, location, "DELETE_CLUSTER", cluster, self.latency.delete)
        return self.operation_view(op)

    def _running_operation(self, cluster: dict[str, Any]) -> dict[str, Any] | None:
        for op in self.operations.values():
            if (
                op["_cluster"] == cluster_id(cluster["_project"], cluster["location"], cluster["name"])
                and not op["_done"]
            ):
                return op
        return None

    # -- operations --------------------------------------------------------------------------

    def _new_operation(
        self, project: str, location: str, kind: str, cluster: dict[str, Any], takes: float
    ) -> dict[str, Any]:
        started = self.now()
        name = operation_id()
        base = f"{self._base_url()}/v1/projects/{project}/locations/{location}"
        op = {
            "name": name,
            "zone": location,
            "location": location,
            "operationType": kind,
            "selfLink": f"{base}/operations/{name}",
            "targetLink": f"{base}/clusters/{cluster['name']}",
            "startTime": rfc3339_micros(started),
            "_project": project,
            "_cluster": cluster_id(project, location, cluster["name"]),
            "_started": started,
            "_due": started + max(takes, self.latency.pending),
            "_done": False,
            "_fail": None,
        }
        self.operations[f"{project}/{location}/{name}"] = op
        return op

    def operation_view(self, op: dict[str, Any]) -> dict[str, Any]:
        view = public(op)
        now = self.now()
        if op["_done"]:
            view["status"] = "DONE"
        elif now < op["_started"] + self.latency.pending:
            view["status"] = "PENDING"
        else:
            view["status"] = "RUNNING"
        if op["_done"] and op.get("_fail"):
            view["error"] = {"code": 3 if "Invalid" in op["_fail"] else 8, "message": op["_fail"]}
            view["statusMessage"] = op["_fail"]
        return view

    def get_operation(self, project: str, location: str, name: str) -> dict[str, Any]:
        op = self.operations.get(f"{project}/{location}/{name}")
        if op is None and location == "-":
            op = next(
                (o for k, o in self.operations.items() if k.startswith(f"{project}/") and o["name"] == name),
                None,
            )
        if op is None:
            raise e.GcpError(404, e.OPERATION_NOT_FOUND.format(project=project, location=location, name=name))
        return self.operation_view(op)

    def list_operations(self, project: str, location: str) -> dict[str, Any]:
        ops = [
            self.operation_view(o)
            for o in self.operations.values()
            if o["_project"] == project and location in ("-", o["location"])
        ]
        return {"operations": ops}

    def advance(self) -> bool:
        """Finish every operation whose time has come. Returns True if anything changed."""
        now = self.now()
        changed = False
        for op in list(self.operations.values()):
            if not op["_done"] and now >= op["_due"]:
                self._finish(op, now)
                changed = True
        return changed

    def _finish(self, op: dict[str, Any], now: float) -> None:
        op["_done"] = True
        op["endTime"] = rfc3339_micros(now)
        cluster = self.clusters.get(op["_cluster"])
        if cluster is None:
            return
        if op["operationType"] == "DELETE_CLUSTER":
            del self.clusters[op["_cluster"]]
            self.hooks.deleted(cluster)
        elif op.get("_fail"):
            cluster["status"] = "ERROR"
            cluster["statusMessage"] = op["_fail"]
        else:
            self._provisioned(cluster)

    def _provisioned(self, cluster: dict[str, Any]) -> None:
        port, ca = self.hooks.prepare(cluster_id(cluster["_project"], cluster["location"], cluster["name"]))
        cluster.update(
            status="RUNNING", endpoint=f"127.0.0.1:{port}", masterAuth={"clusterCaCertificate": ca}
        )
        for pool in cluster["nodePools"]:
            pool["status"] = "RUNNING"
        self.hooks.running(cluster)
