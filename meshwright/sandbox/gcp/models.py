"""State and verbs of the emulated GKE and Compute APIs.

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

from meshwright.sandbox.faults import Faults
from meshwright.sandbox.gcp import errors as e
from meshwright.sandbox.gcp.filters import compile_filter
from meshwright.sandbox.settings import Latency

MASTER_VERSION = "1.32.4-gke.1106000"
SERVICES_RANGE = "34.118.224.0/20"  # GKE-managed services range, reused by every cluster (GKE >= 1.29)
POD_POOL = ipaddress.IPv4Network("10.0.0.0/8")
RELEASE_CHANNELS = ["UNSPECIFIED", "RAPID", "REGULAR", "STABLE", "EXTENDED"]
CLUSTER_STATUSES = [
    "STATUS_UNSPECIFIED",
    "PROVISIONING",
    "RUNNING",
    "RECONCILING",
    "STOPPING",
    "ERROR",
    "DEGRADED",
]
PROTOCOLS = {"tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"}


class ClusterHooks(Protocol):
    """What the world does when a cluster's control plane comes up or goes away."""

    def prepare(self, cluster_id: str) -> tuple[int, str]:
        """Allocate the endpoint port and the CA for a new cluster: (port, base64 PEM CA)."""
        ...

    def running(self, cluster: dict[str, Any]) -> None: ...

    def deleted(self, cluster: dict[str, Any]) -> None: ...


def cluster_id(project: str, location: str, name: str) -> str:
    return f"{project}/{location}/{name}"


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def _enum(value: Any, names: list[str], field: str) -> str:
    """Enums arrive as integers (google-cloud clients) or strings (discovery client)."""
    if isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str) and value in names:
        return value
    raise e.invalid(f"Invalid value at '{field}' ({value!r})")


def _op_id() -> str:
    return f"operation-{int(time.time() * 1000)}-{secrets.token_hex(4)}"


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
            "createTime": _rfc3339(created),
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
        name = _op_id()
        base = f"{self._base_url()}/v1/projects/{project}/locations/{location}"
        op = {
            "name": name,
            "zone": location,
            "location": location,
            "operationType": kind,
            "selfLink": f"{base}/operations/{name}",
            "targetLink": f"{base}/clusters/{cluster['name']}",
            "startTime": _rfc3339(started),
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
        op["endTime"] = _rfc3339(now)
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


def public(record: dict[str, Any]) -> dict[str, Any]:
    """The API view of a record: everything but the sandbox's own `_` fields."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


class Compute:
    """Compute v1: networks, firewall rules and global operations of every project."""

    def __init__(
        self,
        state: dict[str, Any],
        *,
        latency: Latency,
        faults: Faults,
        base_url: Callable[[], str],
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.firewalls: dict[str, dict[str, Any]] = state.setdefault("firewalls", {})
        self.networks: dict[str, dict[str, Any]] = state.setdefault("networks", {})
        self.operations: dict[str, dict[str, Any]] = state.setdefault("global_operations", {})
        self.latency, self.faults, self.sleep, self.now = latency, faults, sleep, now
        self._base_url = base_url

    def _injected_failure(self, project: str, kind: str, link: str) -> dict[str, Any] | None:
        """An operation that a fault rule makes fail: DONE, with the error fields the client raises on."""
        message = self.faults.on_operation(api="compute", operation=kind, cluster=None)
        if message is None:
            return None
        op = self._operation(project, kind, {"selfLink": link, "id": "0"})
        code = 403 if "permission" in message.lower() else 400
        op.update(
            httpErrorStatusCode=code,
            httpErrorMessage="FORBIDDEN" if code == 403 else "BAD REQUEST",
            error={
                "errors": [
                    {
                        "code": "QUOTA_EXCEEDED" if "quota" in message.lower() else "INVALID",
                        "message": message,
                    }
                ]
            },
        )
        self.operations[f"{project}/{op['name']}"].update(op)
        return op

    def _link(self, project: str, collection: str, name: str) -> str:
        return f"{self._base_url()}/compute/v1/projects/{project}/global/{collection}/{name}"

    def _ensure_default_network(self, project: str) -> None:
        if f"{project}/default" not in self.networks:
            self._put_network(project, {"name": "default", "autoCreateSubnetworks": True})

    def _put_network(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["name"]
        network = {
            "kind": "compute#network",
            "id": str(secrets.randbits(63)),
            "name": name,
            "autoCreateSubnetworks": bool(body.get("autoCreateSubnetworks", True)),
            "routingConfig": {"routingMode": "REGIONAL"},
            "creationTimestamp": _rfc3339(self.now()),
            "selfLink": self._link(project, "networks", name),
            "_project": project,
        }
        self.networks[f"{project}/{name}"] = network
        return network

    def network_exists(self, project: str, name: str) -> bool:
        self._ensure_default_network(project)
        return f"{project}/{name}" in self.networks

    def get_network(self, project: str, name: str) -> dict[str, Any]:
        self._ensure_default_network(project)
        return public(self._get(self.networks, project, "networks", name))

    def list_networks(self, project: str, *, where: str | None = None) -> dict[str, Any]:
        self._ensure_default_network(project)
        return self._list(self.networks, project, "compute#networkList", where=where)

    def insert_network(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        self._ensure_default_network(project)
        name = self._valid_name(body)
        if f"{project}/{name}" in self.networks:
            raise e.GcpError(409, e.RESOURCE_EXISTS.format(project=project, collection="networks", name=name))
        network = self._put_network(project, body)
        return self._operation(project, "insert", network)

    def _get(
        self, table: dict[str, dict[str, Any]], project: str, collection: str, name: str
    ) -> dict[str, Any]:
        item = table.get(f"{project}/{name}")
        if item is None:
            raise e.GcpError(
                404, e.RESOURCE_NOT_FOUND.format(project=project, collection=collection, name=name)
            )
        return item

    def _list(
        self, table: dict[str, dict[str, Any]], project: str, kind: str, *, where: str | None = None
    ) -> dict[str, Any]:
        matches = compile_filter(where)
        items = [public(v) for v in table.values() if v["_project"] == project and matches(v)]
        return {
            "kind": kind,
            "id": f"projects/{project}",
            "items": sorted(items, key=lambda i: i["name"]),
            "selfLink": "",
        }

    @staticmethod
    def _valid_name(body: dict[str, Any]) -> str:
        import re

        name = (body or {}).get("name") or ""
        if not re.match(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", name):
            raise e.invalid(
                f"Invalid value for field 'resource.name': '{name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'"
            )
        return str(name)

    # -- firewalls ---------------------------------------------------------------------------

    def insert_firewall(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        name = self._valid_name(body)
        failed = self._injected_failure(project, "insert", self._link(project, "firewalls", name))
        if failed:
            return failed
        if f"{project}/{name}" in self.firewalls:
            raise e.GcpError(
                409, e.RESOURCE_EXISTS.format(project=project, collection="firewalls", name=name)
            )
        rule = self._firewall(project, name, body)
        self.sleep(self.latency.firewall)
        self.firewalls[f"{project}/{name}"] = rule
        return self._operation(project, "insert", rule)

    def _firewall(
        self, project: str, name: str, body: dict[str, Any], *, base: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        merged = {**(base or {}), **{k: v for k, v in body.items() if not k.startswith("_")}}
        network = (merged.get("network") or "global/networks/default").rsplit("/", 1)[-1]
        if not self.network_exists(project, network):
            raise e.invalid(
                f"Invalid value for field 'resource.network': '{merged.get('network')}'. The referenced network resource cannot be found."
            )
        direction = merged.get("direction") or "INGRESS"
        if direction not in ("INGRESS", "EGRESS"):
            raise e.invalid(f"Invalid value for field 'resource.direction': '{direction}'.")
        priority = int(merged.get("priority", 1000))
        if not 0 <= priority <= 65535:
            raise e.invalid(f"Invalid value for field 'resource.priority': '{priority}'.")
        for rng in [*merged.get("sourceRanges", []), *merged.get("destinationRanges", [])]:
            try:
                ipaddress.ip_network(rng, strict=False)
            except ValueError:
                raise e.invalid(
                    f"Invalid value for field 'resource.sourceRanges': '{rng}'. Must be a CIDR address range."
                ) from None
        for allowed in [*merged.get("allowed", []), *merged.get("denied", [])]:
            proto = str(allowed.get("IPProtocol", "")).lower()
            if proto not in PROTOCOLS and not proto.isdigit():
                raise e.invalid(f"Invalid value for field 'resource.allowed[].IPProtocol': '{proto}'.")
        created = (base or {}).get("creationTimestamp") or _rfc3339(self.now())
        rule = {
            "kind": "compute#firewall",
            "id": (base or {}).get("id") or str(secrets.randbits(63)),
            "creationTimestamp": created,
            "name": name,
            "description": merged.get("description", ""),
            "network": self._link(project, "networks", network),
            "priority": priority,
            "direction": direction,
            "disabled": bool(merged.get("disabled", False)),
            "logConfig": {"enable": bool((merged.get("logConfig") or {}).get("enable", False))},
            "selfLink": self._link(project, "firewalls", name),
            "_project": project,
        }
        for key in ("sourceRanges", "destinationRanges", "sourceTags", "targetTags", "allowed", "denied"):
            if merged.get(key):
                rule[key] = merged[key]
        return rule

    def get_firewall(self, project: str, name: str) -> dict[str, Any]:
        return public(self._get(self.firewalls, project, "firewalls", name))

    def list_firewalls(self, project: str, *, where: str | None = None) -> dict[str, Any]:
        return self._list(self.firewalls, project, "compute#firewallList", where=where)

    def patch_firewall(
        self, project: str, name: str, body: dict[str, Any], *, replace: bool = False
    ) -> dict[str, Any]:
        current = self._get(self.firewalls, project, "firewalls", name)
        failed = self._injected_failure(project, "update" if replace else "patch", current["selfLink"])
        if failed:
            return failed
        if body.get("name") not in (None, name):
            raise e.invalid("Invalid value for field 'resource.name': the name cannot be changed.")
        base = {k: current[k] for k in ("id", "creationTimestamp", "network")} if replace else current
        rule = self._firewall(project, name, body, base=base)
        self.sleep(self.latency.firewall)
        self.firewalls[f"{project}/{name}"] = rule
        return self._operation(project, "update" if replace else "patch", rule)

    def delete_firewall(self, project: str, name: str) -> dict[str, Any]:
        rule = self._get(self.firewalls, project, "firewalls", name)
        failed = self._injected_failure(project, "delete", rule["selfLink"])
        if failed:
            return failed
        self.sleep(self.latency.firewall)
        del self.firewalls[f"{project}/{name}"]
        return self._operation(project, "delete", rule)

    # -- global operations -------------------------------------------------------------------

    def _operation(self, project: str, kind: str, target: dict[str, Any]) -> dict[str, Any]:
        # Changes are applied before the answer, so the operation is DONE at once: the client's
        # ExtendedOperation poller then needs no further request (it ignores client_options).
        name = _op_id()
        stamp = _rfc3339(self.now())
        op = {
            "kind": "compute#operation",
            "id": str(secrets.randbits(63)),
            "name": name,
            "operationType": kind,
            "targetLink": target["selfLink"],
            "targetId": target["id"],
            "status": "DONE",
            "user": "sandbox@meshwright.local",
            "progress": 100,
            "insertTime": stamp,
            "startTime": stamp,
            "endTime": stamp,
            "selfLink": self._link(project, "operations", name),
            "_project": project,
        }
        self.operations[f"{project}/{name}"] = op
        return public(op)

    def get_operation(self, project: str, name: str) -> dict[str, Any]:
        return public(self._get(self.operations, project, "operations", name))

    def list_operations(self, project: str, *, where: str | None = None) -> dict[str, Any]:
        return self._list(self.operations, project, "compute#operationList", where=where)
