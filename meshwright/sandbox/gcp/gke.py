"""State and verbs of the emulated GKE v1 API: clusters and their operations.

A create is validated whole (`cluster_spec.read_request`), then checked against its surroundings
as GKE checks it (the network and its mode, the subnetwork, the machine type, the node service
account, regional quota: `compute` and `projects`), then allocated here (pod range, secondary ranges
on the subnetwork, a subnetwork of its own when asked for), then built (`cluster_spec.build_cluster`);
only a request that passed all of them is stored. Operations advance over wall-clock time:
`advance()` moves every due operation to DONE, and one that cannot finish fails alone.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from meshwright.sandbox.clock import rfc3339_micros
from meshwright.sandbox.faults import Faults
from meshwright.sandbox.gcp import capacity, catalog, subnets, validate
from meshwright.sandbox.gcp import errors as e
from meshwright.sandbox.gcp.cluster_spec import (
    SERVICES_RANGE,
    ClusterRequest,
    Placement,
    build_cluster,
    node_config,
    read_request,
)
from meshwright.sandbox.gcp.compute import Compute
from meshwright.sandbox.gcp.models import (
    ClusterRecord,
    ComputeRecord,
    GkeOperation,
    cluster_key,
    forget_oldest,
    load_table,
    operation_id,
)
from meshwright.sandbox.gcp.projects import Projects
from meshwright.sandbox.settings import Latency

log = logging.getLogger(__name__)

POD_POOL = catalog.POOL


class ClusterHooks(Protocol):
    """What the world does when a cluster's control plane comes up or goes away."""

    def prepare(self, cluster_id: str) -> tuple[int, str]:
        """Allocate the endpoint port and the CA for a new cluster: (port, base64 PEM CA)."""
        ...

    def running(self, cluster: dict[str, Any]) -> None: ...

    def warm(self, cluster: dict[str, Any]) -> None:
        """Start a new cluster's control plane ahead of RUNNING, without waiting for it."""
        ...

    def deleted(self, cluster: dict[str, Any]) -> None: ...


def fleet_id(record: ClusterRecord) -> str:
    """The key the fleet files a cluster under: an id the sandbox made, never a user's name."""
    return record.id


# -- the model -----------------------------------------------------------------------------------


class Gke:
    """The GKE v1 clusters and operations of every project."""

    def __init__(
        self,
        stored: Any,
        *,
        latency: Latency,
        faults: Faults,
        hooks: ClusterHooks,
        base_url: Callable[[], str],
        compute: Compute,
        projects: Projects,
        now: Callable[[], float] = time.time,
    ) -> None:
        stored = stored if isinstance(stored, dict) else {}
        self.clusters = load_table(
            stored.get("clusters"), ClusterRecord.from_json, what="GKE cluster", key=lambda c: c.key
        )
        self.operations = load_table(
            stored.get("operations"), GkeOperation.from_json, what="GKE operation", key=lambda o: o.key
        )
        self.latency, self.faults, self.hooks, self.now = latency, faults, hooks, now
        self.compute, self.projects = compute, projects
        self._base_url = base_url

    def to_json(self) -> dict[str, Any]:
        return {
            "clusters": {k: c.to_json() for k, c in self.clusters.items()},
            "operations": {k: o.to_json() for k, o in self.operations.items()},
        }

    def serving(self) -> list[ClusterRecord]:
        """Clusters whose API server should run."""
        return [c for c in self.clusters.values() if c.status in ("RUNNING", "STOPPING")]

    # -- clusters ----------------------------------------------------------------------------

    def create_cluster(self, project: str, location: str, body: Any) -> dict[str, Any]:
        validate.project(project)
        validate.location(location)
        req = read_request(body, project=project)
        if cluster_key(project, location, req.name) in self.clusters:
            raise e.GcpError(409, e.CLUSTER_EXISTS.format(project=project, location=location, name=req.name))
        subnet = self._subnet_for(project, location, req)
        self._check_nodes(project, location, req)
        cluster = self._allocate(project, location, req, subnet)
        op = self._new_operation(cluster, "CREATE_CLUSTER", self.latency.create)
        op.fail = self.faults.on_operation(api="gke", operation="CREATE_CLUSTER", cluster=req.name)
        op.fail = op.fail or self._overlap_error(cluster)
        self.clusters[cluster.key] = cluster
        if not op.fail:
            self.hooks.warm(cluster.hooks_view())
        return self.operation_view(op)

    def _subnet_for(self, project: str, location: str, req: ClusterRequest) -> ComputeRecord | None:
        """The subnetwork the cluster goes into (None: GKE makes one), or GKE's 400 saying why none."""
        network, region = self.compute.network(project, req.network), catalog.region_of(location)
        if network is None:
            raise e.invalid(e.NETWORK_MISSING.format(network=req.network))
        if req.subnetwork:
            subnet = self.compute.subnet(project, region, req.subnetwork)
            if subnet is None or subnets.last(subnet.view["network"]) != req.network:
                raise e.invalid(
                    e.SUBNETWORK_INVALID.format(
                        project=project, region=region, subnetwork=req.subnetwork, network=req.network
                    )
                )
        elif req.create_subnetwork:
            return None
        elif network.get("autoCreateSubnetworks"):
            subnet = self.compute.subnet(project, region, req.network)
        else:
            raise e.invalid(e.MANUAL_SUBNET_MODE.format(network=req.network))
        assert subnet is not None
        wanted = 1 + (req.services_range != SERVICES_RANGE)
        if len(subnet.view.get("secondaryIpRanges") or []) + wanted > subnets.MAX_SECONDARY_RANGES:
            raise e.invalid(e.SECONDARY_RANGES_FULL.format(subnetwork=subnet.name))
        return subnet

    def _check_nodes(self, project: str, location: str, req: ClusterRequest) -> None:
        """Machine types, the nodes' service account, then regional quota for all of them at once."""
        configs = [node_config({**req.node_config, **pool.config}) for pool in req.pools]
        for config in configs:
            if catalog.guest_cpus(config["machineType"]) is None:
                raise e.invalid(e.MACHINE_TYPE_MISSING.format(machine_type=config["machineType"]))
            account = config["serviceAccount"]
            email = catalog.default_service_account(project) if account == "default" else account
            if not self.projects.account_exists(project, email):
                raise e.invalid(e.NODE_ACCOUNT_MISSING.format(email=email))
        region = catalog.region_of(location)
        asked = capacity.held(location, [(p.count, c) for p, c in zip(req.pools, configs, strict=True)])
        used, limits = self.usage(project, region), self.projects.limits(region)
        short = capacity.shortfalls(asked, limits=limits, used=used, project=project)
        if short:
            raise e.quota_regional(short)

    def usage(self, project: str, region: str) -> dict[str, float]:
        """What the project's clusters in `region` hold (all but those in ERROR, whose VMs are gone)."""
        here = [
            c
            for c in self.clusters.values()
            if c.project == project and catalog.region_of(c.location) == region and c.status != "ERROR"
        ]
        return capacity.add(capacity.of_cluster(c.view) for c in here)

    def _allocate(
        self, project: str, location: str, req: ClusterRequest, subnet: ComputeRecord | None
    ) -> ClusterRecord:
        explicit = bool(req.requested_range) and not req.requested_range.startswith("/")
        pod_range = req.requested_range if explicit else self._free_pod_range(project, req)
        placement = self._place(project, location, req, subnet, pod_range)
        return build_cluster(
            req,
            project=project,
            location=location,
            pod_range=pod_range,
            explicit=explicit,
            placement=placement,
            link=f"{self._base_url()}/v1/projects/{project}/locations/{location}/clusters/{req.name}",
            created=self.now(),
        )

    def _place(
        self, project: str, location: str, req: ClusterRequest, subnet: ComputeRecord | None, pod_range: str
    ) -> Placement:
        """GKE's secondary ranges on the subnetwork (gke-<cluster>-pods-<hash>), on one of its own if asked."""
        tag = secrets.token_hex(4)
        if subnet is None:
            name = req.subnetwork_name or f"gke-{req.name}-subnet-{tag}"
            subnet = self.compute.cluster_subnet(project, req.network, catalog.region_of(location), name)
        ranges = [(f"gke-{req.name}-pods-{tag}", pod_range)]
        if req.services_range != SERVICES_RANGE:
            ranges.append((f"gke-{req.name}-services-{tag}", req.services_range))
        secondary = subnet.view.setdefault("secondaryIpRanges", [])
        secondary += [{"rangeName": n, "ipCidrRange": cidr} for n, cidr in ranges]
        return Placement(
            subnetwork=subnet.name,
            pods_range=ranges[0][0],
            services_range=ranges[1][0] if len(ranges) > 1 else "",
            created_subnetwork=req.create_subnetwork,
        )

    def _release(self, cluster: ClusterRecord) -> None:
        """A deleted cluster's secondary ranges leave its subnetwork; a subnetwork GKE made for it goes."""
        policy = cluster.view.get("ipAllocationPolicy") or {}
        region = catalog.region_of(cluster.location)
        subnet = self.compute.subnets.get(
            subnets.subnet_key(cluster.project, region, cluster.view["subnetwork"])
        )
        if subnet is None:
            return
        if policy.get("createSubnetwork"):
            self.compute.remove_subnet(subnet)
            return
        mine = {policy.get("clusterSecondaryRangeName"), policy.get("servicesSecondaryRangeName")}
        kept = [r for r in subnet.view.get("secondaryIpRanges") or [] if r.get("rangeName") not in mine]
        subnet.view["secondaryIpRanges"] = kept

    def _taken(
        self, project: str, network: str, *, exclude: str | None = None
    ) -> Iterator[tuple[str, ipaddress.IPv4Network]]:
        for c in self.clusters.values():
            mine = c.project == project and c.view["network"] == network
            if mine and c.key != exclude and c.status != "ERROR":
                yield c.name, c.pod_range

    def _free_pod_range(self, project: str, req: ClusterRequest) -> str:
        prefix = int(req.requested_range.lstrip("/") or 14)
        taken = [net for _, net in self._taken(project, req.network)]
        taken += [net for _, net in subnets.ranges(self.compute.network_subnets(project, req.network))]
        # Scan from the top of 10/8 so that users' explicit low ranges are rarely in the way.
        for candidate in reversed(list(POD_POOL.subnets(new_prefix=prefix))):
            if not any(candidate.overlaps(t) for t in taken):
                return str(candidate)
        raise e.GcpError(429, "Insufficient IP space in 10.0.0.0/8 for a new pod range.")

    def _overlap_error(self, cluster: ClusterRecord) -> str | None:
        if not cluster.explicit_range:
            return None
        mine = cluster.pod_range
        for owner, other in self._taken(cluster.project, cluster.view["network"], exclude=cluster.key):
            if mine.overlaps(other):
                return e.OVERLAP.format(cidr=mine, other=other, owner=owner)
        clash = subnets.primary_conflict(
            mine, self.compute.network_subnets(cluster.project, cluster.view["network"])
        )
        if clash:
            return f"Google Compute Engine: {clash}"
        return None

    def get_cluster(self, project: str, location: str, name: str) -> dict[str, Any]:
        return self._cluster(project, location, name).view

    def _cluster(self, project: str, location: str, name: str) -> ClusterRecord:
        validate.project(project)
        validate.location(location, any_allowed=True)
        cluster = self.clusters.get(cluster_key(project, location, name))
        if cluster is None:
            raise e.GcpError(404, e.CLUSTER_NOT_FOUND.format(project=project, location=location, name=name))
        return cluster

    def list_clusters(self, project: str, location: str) -> dict[str, Any]:
        validate.project(project)
        validate.location(location, any_allowed=True)
        found = [c for c in self.clusters.values() if c.project == project and location in ("-", c.location)]
        return {"clusters": [c.view for c in sorted(found, key=lambda c: (c.location, c.name))]}

    def delete_cluster(self, project: str, location: str, name: str) -> dict[str, Any]:
        cluster = self._cluster(project, location, name)
        busy = self._running_operation(cluster)
        if busy is not None:
            verb = "creating" if busy.kind == "CREATE_CLUSTER" else "deleting"
            raise e.failed_precondition(
                e.OPERATION_IN_PROGRESS.format(operation=busy.name, verb=verb, name=name)
            )
        cluster.view["status"] = "STOPPING"
        op = self._new_operation(cluster, "DELETE_CLUSTER", self.latency.delete)
        return self.operation_view(op)

    def set_resource_labels(
        self, project: str, location: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """clusters.setResourceLabels: all labels at once, guarded by the current labelFingerprint."""
        cluster = self._cluster(project, location, name)
        expected, given = cluster.view.get("labelFingerprint", ""), str(body.get("labelFingerprint") or "")
        if given != expected:
            raise e.failed_precondition(e.LABEL_FINGERPRINT_MISMATCH.format(given=given, expected=expected))
        raw = body.get("resourceLabels") or {}
        if not isinstance(raw, dict):
            raise e.invalid("Invalid value for field 'resourceLabels': not a map.")
        labels = validate.labels({str(k): str(v) for k, v in raw.items()}, "resource_labels")
        cluster.view.update(resourceLabels=labels, labelFingerprint=secrets.token_hex(4))
        op = self._new_operation(cluster, "SET_LABELS", 0.0)
        return self.operation_view(op)

    def _running_operation(self, cluster: ClusterRecord) -> GkeOperation | None:
        return next(
            (op for op in self.operations.values() if op.cluster == cluster.key and not op.done), None
        )

    # -- operations --------------------------------------------------------------------------

    def _new_operation(self, cluster: ClusterRecord, kind: str, takes: float) -> GkeOperation:
        started = self.now()
        name = operation_id()
        base = f"{self._base_url()}/v1/projects/{cluster.project}/locations/{cluster.location}"
        view = {
            "name": name,
            "zone": cluster.location,
            "location": cluster.location,
            "operationType": kind,
            "selfLink": f"{base}/operations/{name}",
            "targetLink": f"{base}/clusters/{cluster.name}",
            "startTime": rfc3339_micros(started),
        }
        due = started + max(takes, self.latency.pending)
        op = GkeOperation(cluster.project, cluster.key, started, due, view)
        self.operations[op.key] = op
        forget_oldest(self.operations, finished=lambda o: o.done, age=lambda o: o.started)
        return op

    def operation_view(self, op: GkeOperation) -> dict[str, Any]:
        view = dict(op.view)
        if op.done:
            view["status"] = "DONE"
        elif self.now() < op.started + self.latency.pending:
            view["status"] = "PENDING"
        else:
            view["status"] = "RUNNING"
        if op.done and op.fail:
            view["error"] = {"code": 3 if "Invalid" in op.fail else 8, "message": op.fail}
            view["statusMessage"] = op.fail
        return view

    def get_operation(self, project: str, location: str, name: str) -> dict[str, Any]:
        validate.project(project)
        validate.location(location, any_allowed=True)
        op = self.operations.get(f"{project}/{location}/{name}")
        if op is None and location == "-":
            op = next((o for o in self.operations.values() if o.project == project and o.name == name), None)
        if op is None:
            raise e.GcpError(404, e.OPERATION_NOT_FOUND.format(project=project, location=location, name=name))
        return self.operation_view(op)

    def list_operations(self, project: str, location: str) -> dict[str, Any]:
        validate.project(project)
        validate.location(location, any_allowed=True)
        ops = [o for o in self.operations.values() if o.project == project and location in ("-", o.location)]
        return {"operations": [self.operation_view(o) for o in ops]}

    def cluster_of(self, project: str, location: str, operation: str) -> str | None:
        """The name of the cluster an operation works on (fault rules match on it)."""
        op = self.operations.get(f"{project}/{location}/{operation}")
        return op.cluster.rsplit("/", 1)[-1] if op else None

    def advance(self) -> bool:
        """Finish every operation whose time has come. Returns True if anything changed."""
        now = self.now()
        due = [op for op in self.operations.values() if not op.done and now >= op.due]
        for op in due:
            try:
                self._finish(op, now)
            except Exception as err:  # one cluster that cannot start must not stop the others
                log.warning(
                    "operation %s on %.80s failed: %s: %.120s", op.name, op.cluster, type(err).__name__, err
                )
                self._fail(op, "Internal error while finishing the operation.")
        return bool(due)

    def _finish(self, op: GkeOperation, now: float) -> None:
        op.done = True
        op.view["endTime"] = rfc3339_micros(now)
        cluster = self.clusters.get(op.cluster)
        if cluster is None:
            return
        if op.kind == "SET_LABELS":  # the labels were set with the request
            return
        if op.kind == "DELETE_CLUSTER":
            del self.clusters[op.cluster]
            self._release(cluster)
            self.hooks.deleted(cluster.hooks_view())
        elif op.fail:
            self._fail(op, op.fail)
        else:
            self._provisioned(cluster)

    def _fail(self, op: GkeOperation, message: str) -> None:
        op.done, op.fail = True, message
        cluster = self.clusters.get(op.cluster)
        if cluster is not None:
            cluster.view.update(status="ERROR", statusMessage=message)
            if op.kind == "CREATE_CLUSTER":  # its control plane, started ahead, never came up
                self.hooks.deleted(cluster.hooks_view())

    def _provisioned(self, cluster: ClusterRecord) -> None:
        port, ca = self.hooks.prepare(fleet_id(cluster))
        cluster.view.update(
            status="RUNNING", endpoint=f"127.0.0.1:{port}", masterAuth={"clusterCaCertificate": ca}
        )
        for pool in cluster.view["nodePools"]:
            pool["status"] = "RUNNING"
        self.hooks.running(cluster.hooks_view())
