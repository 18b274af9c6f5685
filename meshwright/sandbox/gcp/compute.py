"""State and verbs of the emulated Compute v1 API: networks, firewall rules, global operations.

Changes are applied before the answer, so every operation is DONE when it is returned. A firewall
write is validated whole (`read_firewall`), then built (`build_firewall`), then stored.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshwright.sandbox.clock import rfc3339_micros
from meshwright.sandbox.faults import Faults
from meshwright.sandbox.gcp import errors as e
from meshwright.sandbox.gcp import validate
from meshwright.sandbox.gcp.filters import compile_filter
from meshwright.sandbox.gcp.models import ComputeRecord, forget_oldest, load_table, operation_id
from meshwright.sandbox.gcp.validate import Fields
from meshwright.sandbox.settings import Latency

PROTOCOLS = {"tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"}
FIREWALL_MESSAGE = "compute.v1.Firewall"
RANGES = ("sourceRanges", "destinationRanges")
TAGS = ("sourceTags", "targetTags")
RULES = ("allowed", "denied")
Table = dict[str, ComputeRecord]


@dataclass(frozen=True)
class FirewallRequest:
    """A firewall body (insert, or patch merged onto the current rule) that passed every check."""

    network: str
    direction: str
    priority: int
    description: str
    disabled: bool
    log: bool
    lists: dict[str, list[Any]]  # ranges, tags and rules, only those given


def read_name(body: Any, message: str) -> str:
    name = Fields.root(body, message).raw("name") or ""
    if not isinstance(name, str) or not validate.COMPUTE_NAME.fullmatch(name):
        raise e.invalid(
            f"Invalid value for field 'resource.name': {validate.shown(name)}. "
            f"Must be a match of regex '(?:{validate.COMPUTE_NAME.pattern})'"
        )
    return name


def read_firewall(body: dict[str, Any]) -> FirewallRequest:
    given = Fields(body, "resource", FIREWALL_MESSAGE)
    direction = given.text("direction") or "INGRESS"
    if direction not in ("INGRESS", "EGRESS"):
        raise e.invalid(f"Invalid value for field 'resource.direction': {validate.shown(direction)}.")
    priority = given.integer("priority", 1000)
    if not 0 <= priority <= 65535:
        raise e.invalid(f"Invalid value for field 'resource.priority': '{priority}'.")
    lists: dict[str, list[Any]] = {k: _ranges(given, k) for k in RANGES}
    lists |= {k: given.texts(k, limit=256) for k in TAGS}
    lists |= {k: _rules(given, k) for k in RULES}
    return FirewallRequest(
        network=given.text("network") or "global/networks/default",
        direction=direction,
        priority=priority,
        description=given.text("description"),
        disabled=given.boolean("disabled"),
        log=given.message("logConfig", "compute.v1.FirewallLogConfig").boolean("enable"),
        lists={k: v for k, v in lists.items() if v},
    )


def _ranges(given: Fields, key: str) -> list[str]:
    ranges = given.texts(key, limit=5000)
    for rng in ranges:
        try:
            ipaddress.ip_network(rng, strict=False)
        except ValueError:
            raise e.invalid(
                f"Invalid value for field 'resource.{key}': {validate.shown(rng)}. Must be a CIDR address range."
            ) from None
    return ranges


def _rules(given: Fields, key: str) -> list[dict[str, Any]]:
    rules = []
    for item in given.messages(key, "compute.v1.Allowed", limit=256):
        proto = item.text("IPProtocol").lower()
        if proto not in PROTOCOLS and not (proto.isdigit() and int(proto) <= 255):
            raise e.invalid(
                f"Invalid value for field 'resource.{key}[].IPProtocol': {validate.shown(proto)}."
            )
        ports = item.texts("ports", limit=5000)
        rules.append({"IPProtocol": item.text("IPProtocol"), **({"ports": ports} if ports else {})})
    return rules


def build_firewall(
    req: FirewallRequest, *, project: str, name: str, links: Callable[[str, str], str], kept: dict[str, Any]
) -> ComputeRecord:
    """The stored rule; `kept` holds the id and creation time of the rule it replaces, if any."""
    view = {
        "kind": "compute#firewall",
        "id": kept.get("id") or str(secrets.randbits(63)),
        "creationTimestamp": kept.get("creationTimestamp") or rfc3339_micros(),
        "name": name,
        "description": req.description,
        "network": links("networks", req.network.rsplit("/", 1)[-1]),
        "priority": req.priority,
        "direction": req.direction,
        "disabled": req.disabled,
        "logConfig": {"enable": req.log},
        "selfLink": links("firewalls", name),
        **req.lists,
    }
    return ComputeRecord(project, view)


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
        self.operations = self._load(stored, "global_operations", "global operation")
        self.latency, self.faults, self.sleep, self.now = latency, faults, sleep, now
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
            "global_operations": self.operations,
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

    def insert_network(self, project: str, body: Any) -> dict[str, Any]:
        self._ensure_default_network(project)
        name = read_name(body, "compute.v1.Network")
        auto = Fields.root(body, "compute.v1.Network").boolean("autoCreateSubnetworks", True)
        if f"{project}/{name}" in self.networks:
            raise e.GcpError(409, e.RESOURCE_EXISTS.format(project=project, collection="networks", name=name))
        return self._operation(project, "insert", self._put_network(project, name, auto_subnets=auto).view)

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
        req = read_firewall(body)
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

    # -- global operations -------------------------------------------------------------------

    def _operation(self, project: str, kind: str, target: dict[str, Any]) -> dict[str, Any]:
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
