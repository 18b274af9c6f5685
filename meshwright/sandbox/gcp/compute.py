"""State and verbs of the emulated Compute v1 API: networks, subnetworks, firewall rules, regional
forwarding rules, operations.

Changes are applied before the answer, so every operation is DONE when it is returned. A firewall
write is validated whole (`read_firewall`), then built (`build_firewall`), then stored; a subnetwork
likewise (`subnets`). A network is in auto mode (one subnet per region, made when a region is first
used, with the range Google gives it) or custom mode (only the subnets inserted); GKE adds and
removes its clusters' secondary ranges here, and its service controller the forwarding rule and
`k8s-fw-` rule of each LoadBalancer Service (`loadbalancers`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from meshwright.sandbox.clock import rfc3339_micros
from meshwright.sandbox.faults import Faults
from meshwright.sandbox.gcp import catalog, loadbalancers, subnets, validate
from meshwright.sandbox.gcp import errors as e
from meshwright.sandbox.gcp.filters import compile_filter
from meshwright.sandbox.gcp.firewalls import (
    FIREWALL_MESSAGE,
    MAX_SOURCE_RANGES,
    build_firewall,
    read_firewall,
    read_name,
)
from meshwright.sandbox.gcp.models import ComputeRecord, forget_oldest, load_table, operation_id
from meshwright.sandbox.gcp.validate import Fields
from meshwright.sandbox.settings import Latency

Table = dict[str, ComputeRecord]


def _rule_key(project: str, region: str, name: str) -> str:
    return f"{project}/{region}/{name}"


class Compute:
    """Compute v1: networks, firewall rules and global operations of every project."""

    def __init__(
        self,
        stored: Any,
        *,
        latency: Latency,
        faults: Faults,
        base_url: Callable[[], str],
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        stored = stored if isinstance(stored, dict) else {}
        self.firewalls = self._load(stored, "firewalls", "firewall rule")
        self.networks = self._load(stored, "networks", "network")
        self.subnets = load_table(
            stored.get("subnetworks"), ComputeRecord.from_json, what="Compute subnetwork", key=subnets.key_of
        )
        self.operations = self._load(stored, "global_operations", "global operation")
        self.forwarding_rules = load_table(
            stored.get("forwarding_rules"),
            ComputeRecord.from_json,
            what="Compute forwarding rule",
            key=lambda r: _rule_key(r.project, subnets.last(r.view["region"]), r.name),
        )
        self.latency, self.faults, self.sleep, self.now = latency, faults, sleep, now
        self.max_source_ranges = MAX_SOURCE_RANGES  # per firewall rule, as Compute; a test may lower it
        self._base_url = base_url

    @staticmethod
    def _load(stored: dict[str, Any], table: str, what: str) -> Table:
        return load_table(
            stored.get(table), ComputeRecord.from_json, what=f"Compute {what}", key=lambda r: r.key
        )

    def to_json(self) -> dict[str, Any]:
        tables = {
            "firewalls": self.firewalls,
            "networks": self.networks,
            "subnetworks": self.subnets,
            "global_operations": self.operations,
            "forwarding_rules": self.forwarding_rules,
        }
        return {name: {k: r.to_json() for k, r in table.items()} for name, table in tables.items()}

    def _link(self, project: str, collection: str, name: str) -> str:
        return f"{self._base_url()}/compute/v1/projects/{project}/global/{collection}/{name}"

    def _links(self, project: str) -> Callable[[str, str], str]:
        return lambda collection, name: self._link(project, collection, name)

    def _get(self, table: Table, project: str, collection: str, name: str) -> ComputeRecord:
        validate.project(project)
        item = table.get(f"{project}/{name}")
        if item is None:
            raise e.GcpError(
                404, e.RESOURCE_NOT_FOUND.format(project=project, collection=collection, name=name)
            )
        return item

    def _list(self, table: Table, project: str, kind: str, *, where: str | None = None) -> dict[str, Any]:
        validate.project(project)
        matches = compile_filter(where)
        items = [r.view for r in table.values() if r.project == project and matches(r.view)]
        return {
            "kind": kind,
            "id": f"projects/{project}",
            "items": sorted(items, key=lambda i: i["name"]),
            "selfLink": "",
        }

    # -- networks ----------------------------------------------------------------------------

    def _ensure_default_network(self, project: str) -> None:
        validate.project(project)
        if f"{project}/default" not in self.networks:
            self._put_network(project, "default", auto_subnets=True)

    def _put_network(self, project: str, name: str, *, auto_subnets: bool) -> ComputeRecord:
        view = {
            "kind": "compute#network",
            "id": str(secrets.randbits(63)),
            "name": name,
            "autoCreateSubnetworks": auto_subnets,
            "subnetworks": [],
            "routingConfig": {"routingMode": "REGIONAL"},
            "creationTimestamp": rfc3339_micros(self.now()),
            "selfLink": self._link(project, "networks", name),
        }
        network = ComputeRecord(project, view)
        self.networks[network.key] = network
        return network

    def network_exists(self, project: str, name: str) -> bool:
        self._ensure_default_network(project)
        return f"{project}/{name}" in self.networks

    def get_network(self, project: str, name: str) -> dict[str, Any]:
        self._ensure_default_network(project)
        return self._get(self.networks, project, "networks", name).view

    def list_networks(self, project: str, *, where: str | None = None) -> dict[str, Any]:
        self._ensure_default_network(project)
        return self._list(self.networks, project, "compute#networkList", where=where)

    def network(self, project: str, name: str) -> dict[str, Any] | None:
        self._ensure_default_network(project)
        record = self.networks.get(f"{project}/{name}")
        return record.view if record else None

    def insert_network(self, project: str, body: Any) -> dict[str, Any]:
        self._ensure_default_network(project)
        name = read_name(body, "compute.v1.Network")
        # Compute makes a legacy network when autoCreateSubnetworks is not set; the sandbox has no
        # legacy networks and makes an auto mode one then.
        auto = Fields.root(body, "compute.v1.Network").boolean("autoCreateSubnetworks", True)
        if f"{project}/{name}" in self.networks:
            raise e.GcpError(409, e.RESOURCE_EXISTS.format(project=project, collection="networks", name=name))
        return self._operation(project, "insert", self._put_network(project, name, auto_subnets=auto).view)

    # -- subnetworks -------------------------------------------------------------------------

    def _base(self, project: str) -> str:
        return f"{self._base_url()}/compute/v1/projects/{project}"

    def network_subnets(self, project: str, network: str) -> list[ComputeRecord]:
        return [
            s
            for s in self.subnets.values()
            if s.project == project and subnets.last(s.view["network"]) == network
        ]

    def _ensure_auto_subnets(self, project: str, region: str) -> None:
        """An auto mode network has a subnet named after it in every region, with Google's range."""
        self._ensure_default_network(project)
        for network in [n for n in self.networks.values() if n.project == project]:
            key = subnets.subnet_key(project, region, network.name)
            if network.view.get("autoCreateSubnetworks") and key not in self.subnets:
                req = subnets.SubnetRequest(
                    network.name, network.name, catalog.auto_range(region), [], "", False
                )
                self._put_subnet(req, project=project, region=region)

    def _put_subnet(self, req: subnets.SubnetRequest, *, project: str, region: str) -> ComputeRecord:
        network = self.networks[f"{project}/{req.network}"]
        subnet = subnets.build_subnet(
            req,
            project=project,
            region=region,
            network_link=network.view["selfLink"],
            base=self._base(project),
            created=rfc3339_micros(self.now()),
        )
        self.subnets[subnets.key_of(subnet)] = subnet
        network.view["subnetworks"] = [*network.view.get("subnetworks", []), subnet.view["selfLink"]]
        return subnet

    def insert_subnetwork(self, project: str, region: str, body: Any) -> dict[str, Any]:
        self._ensure_auto_subnets(project, validate.region(region))
        req = subnets.read_subnet(body, read_name(body, subnets.MESSAGE))
        if f"{project}/{req.network}" not in self.networks:
            raise e.invalid(
                f"Invalid value for field 'resource.network': {validate.shown(req.network)}. "
                "The referenced network resource cannot be found."
            )
        path = f"projects/{project}/regions/{region}/subnetworks/{req.name}"
        if subnets.subnet_key(project, region, req.name) in self.subnets:
            raise e.GcpError(409, e.RESOURCE_PATH_EXISTS.format(path=path))
        wanted = [req.primary, *(r["ipCidrRange"] for r in req.secondary)]
        clash = subnets.conflict(wanted, self.network_subnets(project, req.network))
        if clash:
            raise e.invalid(clash)
        subnet = self._put_subnet(req, project=project, region=region)
        return self._operation(project, "insert", subnet.view, region=region)

    def subnet(self, project: str, region: str, name: str) -> ComputeRecord | None:
        self._ensure_auto_subnets(project, region)
        return self.subnets.get(subnets.subnet_key(project, region, name))

    def get_subnetwork(self, project: str, region: str, name: str) -> dict[str, Any]:
        validate.project(project)
        found = self.subnet(project, validate.region(region), name)
        if found is None:
            path = f"projects/{project}/regions/{region}/subnetworks/{name}"
            raise e.GcpError(404, e.RESOURCE_PATH_NOT_FOUND.format(path=path))
        return found.view

    def list_subnetworks(self, project: str, region: str, *, where: str | None = None) -> dict[str, Any]:
        self._ensure_auto_subnets(project, validate.region(region))
        here = {k: s for k, s in self.subnets.items() if subnets.last(s.view["region"]) == region}
        listed = self._list(here, project, "compute#subnetworkList", where=where)
        return {**listed, "id": f"projects/{project}/regions/{region}/subnetworks"}

    def cluster_subnet(self, project: str, network: str, region: str, name: str) -> ComputeRecord:
        """A subnetwork GKE makes for a cluster (createSubnetwork): a free /20 of 10.0.0.0/8."""
        taken = [net for _, net in subnets.ranges(self.network_subnets(project, network))]
        primary = next(
            str(c) for c in catalog.POOL.subnets(new_prefix=20) if not any(c.overlaps(t) for t in taken)
        )
        req = subnets.SubnetRequest(name, network, primary, [], "", False)
        return self._put_subnet(req, project=project, region=region)

    def remove_subnet(self, subnet: ComputeRecord) -> None:
        del self.subnets[subnets.key_of(subnet)]
        network = self.networks.get(f"{subnet.project}/{subnets.last(subnet.view['network'])}")
        if network is not None:
            links = network.view.get("subnetworks", [])
            network.view["subnetworks"] = [link for link in links if link != subnet.view["selfLink"]]

    # -- firewalls ---------------------------------------------------------------------------

    def insert_firewall(self, project: str, body: Any) -> dict[str, Any]:
        validate.project(project)
        name = read_name(body, FIREWALL_MESSAGE)
        failed = self._injected_failure(project, "insert", self._link(project, "firewalls", name))
        if failed:
            return failed
        if f"{project}/{name}" in self.firewalls:
            raise e.GcpError(
                409, e.RESOURCE_EXISTS.format(project=project, collection="firewalls", name=name)
            )
        return self._store_firewall(project, name, body, kept={}, kind="insert")

    def patch_firewall(self, project: str, name: str, body: Any, *, replace: bool = False) -> dict[str, Any]:
        current = self._get(self.firewalls, project, "firewalls", name).view
        kind = "update" if replace else "patch"
        failed = self._injected_failure(project, kind, current["selfLink"])
        if failed:
            return failed
        given = Fields.root(body, FIREWALL_MESSAGE).data
        if read_name({"name": name, **given}, FIREWALL_MESSAGE) != name:
            raise e.invalid("Invalid value for field 'resource.name': the name cannot be changed.")
        kept = {k: current[k] for k in ("id", "creationTimestamp", "network")}
        merged = {**(kept if replace else current), **given}
        return self._store_firewall(project, name, merged, kept=kept, kind=kind)

    def _store_firewall(
        self, project: str, name: str, body: dict[str, Any], *, kept: dict[str, Any], kind: str
    ) -> dict[str, Any]:
        req = read_firewall(body, max_ranges=self.max_source_ranges)
        if not self.network_exists(project, req.network.rsplit("/", 1)[-1]):
            raise e.invalid(
                f"Invalid value for field 'resource.network': {validate.shown(req.network)}. "
                "The referenced network resource cannot be found."
            )
        rule = build_firewall(req, project=project, name=name, links=self._links(project), kept=kept)
        self.sleep(self.latency.firewall)
        self.firewalls[rule.key] = rule
        return self._operation(project, kind, rule.view)

    def get_firewall(self, project: str, name: str) -> dict[str, Any]:
        return self._get(self.firewalls, project, "firewalls", name).view

    def list_firewalls(self, project: str, *, where: str | None = None) -> dict[str, Any]:
        return self._list(self.firewalls, project, "compute#firewallList", where=where)

    def delete_firewall(self, project: str, name: str) -> dict[str, Any]:
        rule = self._get(self.firewalls, project, "firewalls", name)
        failed = self._injected_failure(project, "delete", rule.view["selfLink"])
        if failed:
            return failed
        self.sleep(self.latency.firewall)
        del self.firewalls[rule.key]
        return self._operation(project, "delete", rule.view)

    # -- forwarding rules (regional), and what the service controller makes -------------------

    def _forwarding_rule(self, project: str, region: str, name: str) -> ComputeRecord:
        validate.project(project)
        found = self.forwarding_rules.get(_rule_key(project, validate.region(region), name))
        if found is None:
            path = f"projects/{project}/regions/{region}/forwardingRules/{name}"
            raise e.GcpError(404, e.RESOURCE_PATH_NOT_FOUND.format(path=path))
        return found

    def get_forwarding_rule(self, project: str, region: str, name: str) -> dict[str, Any]:
        return self._forwarding_rule(project, region, name).view

    def list_forwarding_rules(self, project: str, region: str, *, where: str | None = None) -> dict[str, Any]:
        validate.region(region)
        here = {k: r for k, r in self.forwarding_rules.items() if subnets.last(r.view["region"]) == region}
        listed = self._list(here, project, "compute#forwardingRuleList", where=where)
        return {**listed, "id": f"projects/{project}/regions/{region}/forwardingRules"}

    def aggregated_forwarding_rules(self, project: str, *, where: str | None = None) -> dict[str, Any]:
        """Every region's rules under `regions/<region>`; regions without any are left out."""
        listed = self._list(self.forwarding_rules, project, "compute#forwardingRuleList", where=where)
        items: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for rule in listed["items"]:
            scope = items.setdefault(f"regions/{subnets.last(rule['region'])}", {"forwardingRules": []})
            scope["forwardingRules"].append(rule)
        return {
            "kind": "compute#forwardingRuleAggregatedList",
            "id": f"projects/{project}/aggregated/forwardingRules",
            "items": items,
            "selfLink": "",
        }

    def delete_forwarding_rule(self, project: str, region: str, name: str) -> dict[str, Any]:
        rule = self._forwarding_rule(project, region, name)
        failed = self._injected_failure(project, "delete", rule.view["selfLink"])
        if failed:
            return failed
        del self.forwarding_rules[_rule_key(project, region, name)]
        return self._operation(project, "delete", rule.view, region=region)

    def put_service_balancer(
        self, lb: loadbalancers.ServiceBalancer, *, project: str, region: str, network: str, tag: str
    ) -> None:
        """The service controller made (or updated) a Service's load balancer: its two rules."""
        body = loadbalancers.firewall_body(lb, network=network, tag=tag)
        kept = self.firewalls.get(f"{project}/{body['name']}")
        rule = build_firewall(
            read_firewall(body),
            project=project,
            name=body["name"],
            links=self._links(project),
            kept=kept.view if kept else {},
        )
        self.firewalls[rule.key] = rule
        key, old = (
            _rule_key(project, region, lb.lb_name),
            self.forwarding_rules.get(_rule_key(project, region, lb.lb_name)),
        )
        view = loadbalancers.forwarding_rule(lb, region_link=f"{self._base(project)}/regions/{region}")
        if old is not None:  # GKE deletes and re-inserts it; the sandbox keeps its id
            view.update(id=old.view["id"], creationTimestamp=old.view["creationTimestamp"])
        self.forwarding_rules[key] = ComputeRecord(project, view)

    def drop_service_balancer(self, lb_name: str, *, project: str, region: str) -> None:
        """The service controller removed a load balancer whose Service went (or stopped being one)."""
        self.forwarding_rules.pop(_rule_key(project, region, lb_name), None)
        self.firewalls.pop(f"{project}/{loadbalancers.firewall_name(lb_name)}", None)

    # -- global operations -------------------------------------------------------------------

    def _operation(
        self, project: str, kind: str, target: dict[str, Any], *, region: str | None = None
    ) -> dict[str, Any]:
        # Changes are applied before the answer, so the operation is DONE at once: the client's
        # ExtendedOperation poller then needs no further request (it ignores client_options).
        name = operation_id()
        stamp = rfc3339_micros(self.now())
        view = {
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
        }
        if region:
            scope = f"{self._base(project)}/regions/{region}"
            view.update(region=scope, selfLink=f"{scope}/operations/{name}")
        op = ComputeRecord(project, view)
        self.operations[op.key] = op
        forget_oldest(self.operations, finished=lambda o: True, age=lambda o: o.view["insertTime"])
        return view

    def _injected_failure(self, project: str, kind: str, link: str) -> dict[str, Any] | None:
        """An operation that a fault rule makes fail: DONE, with the error fields the client raises on."""
        message = self.faults.on_operation(api="compute", operation=kind, cluster=None)
        if message is None:
            return None
        view = self._operation(project, kind, {"selfLink": link, "id": "0"})
        code = 403 if "permission" in message.lower() else 400
        reason = "QUOTA_EXCEEDED" if "quota" in message.lower() else "INVALID"
        view.update(
            httpErrorStatusCode=code,
            httpErrorMessage="FORBIDDEN" if code == 403 else "BAD REQUEST",
            error={"errors": [{"code": reason, "message": message}]},
        )
        return view

    def get_operation(self, project: str, name: str) -> dict[str, Any]:
        return self._get(self.operations, project, "operations", name).view

    def list_operations(self, project: str, *, where: str | None = None) -> dict[str, Any]:
        return self._list(self.operations, project, "compute#operationList", where=where)
