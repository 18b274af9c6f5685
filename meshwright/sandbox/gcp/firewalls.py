"""A Compute firewall rule's body, validated whole (`read_firewall`) and built (`build_firewall`). Pure."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshwright.sandbox.clock import rfc3339_micros
from meshwright.sandbox.gcp import errors as e
from meshwright.sandbox.gcp import validate
from meshwright.sandbox.gcp.models import ComputeRecord
from meshwright.sandbox.gcp.validate import Fields

PROTOCOLS = {"tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"}
FIREWALL_MESSAGE = "compute.v1.Firewall"
RANGES = ("sourceRanges", "destinationRanges")
TAGS = ("sourceTags", "targetTags")
RULES = ("allowed", "denied")
# Compute's limit of source (and destination) ranges in one VPC firewall rule
# (cloud.google.com/vpc/docs/quota, "per firewall rule"). `Compute.max_source_ranges` lowers it
# for a test; a sandbox keeps the real one.
MAX_SOURCE_RANGES = 5000


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


def read_firewall(body: dict[str, Any], *, max_ranges: int = MAX_SOURCE_RANGES) -> FirewallRequest:
    given = Fields(body, "resource", FIREWALL_MESSAGE)
    direction = given.text("direction") or "INGRESS"
    if direction not in ("INGRESS", "EGRESS"):
        raise e.invalid(f"Invalid value for field 'resource.direction': {validate.shown(direction)}.")
    priority = given.integer("priority", 1000)
    if not 0 <= priority <= 65535:
        raise e.invalid(f"Invalid value for field 'resource.priority': '{priority}'.")
    lists: dict[str, list[Any]] = {k: _ranges(given, k, max_ranges) for k in RANGES}
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


def _ranges(given: Fields, key: str, limit: int) -> list[str]:
    given_ranges = given.raw(key)
    if isinstance(given_ranges, list) and len(given_ranges) > limit:
        raise e.invalid(e.TOO_MANY_RANGES.format(field=f"resource.{key}", limit=limit))
    ranges = given.texts(key, limit=limit)
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
