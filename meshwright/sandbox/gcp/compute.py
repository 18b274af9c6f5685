"""State and verbs of the emulated Compute v1 API: networks, firewall rules, global operations.

Changes are applied before the answer, so every operation is DONE when it is returned.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from meshwright.sandbox.clock import rfc3339_micros
from meshwright.sandbox.faults import Faults
from meshwright.sandbox.gcp import errors as e
from meshwright.sandbox.gcp.common import operation_id, public
from meshwright.sandbox.gcp.filters import compile_filter
from meshwright.sandbox.settings import Latency

PROTOCOLS = {"tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"}


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
            "creationTimestamp": rfc3339_micros(self.now()),
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
        created = (base or {}).get("creationTimestamp") or rfc3339_micros(self.now())
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
        name = operation_id()
        stamp = rfc3339_micros(self.now())
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
