"""A Compute subnetwork: its insert body validated whole, its view built, its ranges read. Pure.

A subnetwork has one primary range and at most 30 secondary ranges (a hard limit, cilium/cilium#18821
and https://cloud.google.com/vpc/docs/quota), and no range of it may overlap another range of its
network, in any region ("Invalid IPCidrRange: ... conflicts with existing subnetwork 'x' in region
'y'", tranquilitybase-io/tb-gcp#160).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from meshwright.sandbox.gcp import errors as e
from meshwright.sandbox.gcp import validate
from meshwright.sandbox.gcp.models import ComputeRecord
from meshwright.sandbox.gcp.validate import Fields

MESSAGE = "compute.v1.Subnetwork"
MAX_SECONDARY_RANGES = 30
CONFLICT = "Invalid IPCidrRange: {cidr} conflicts with existing subnetwork '{name}' in region '{region}'."


@dataclass(frozen=True)
class SubnetRequest:
    name: str
    network: str
    primary: str
    secondary: list[dict[str, str]]
    description: str
    private_google_access: bool


def subnet_key(project: str, region: str, name: str) -> str:
    return f"{project}/{region}/{name}"


def key_of(record: ComputeRecord) -> str:
    return subnet_key(record.project, last(record.view["region"]), record.name)


def last(link: str) -> str:
    return str(link).rsplit("/", 1)[-1]


def read_subnet(body: Any, name: str) -> SubnetRequest:
    given = Fields.root(body, MESSAGE)
    primary = _cidr(given.text("ipCidrRange"), "resource.ipCidrRange")
    ranges = given.messages("secondaryIpRanges", "compute.v1.SubnetworkSecondaryRange", limit=1000)
    if len(ranges) > MAX_SECONDARY_RANGES:
        raise e.invalid(
            f"Invalid value for field 'resource.secondaryIpRanges': at most {MAX_SECONDARY_RANGES} ranges."
        )
    secondary = [_secondary(r, i) for i, r in enumerate(ranges)]
    names = [r["rangeName"] for r in secondary]
    if len(set(names)) != len(names):
        raise e.invalid("Invalid value for field 'resource.secondaryIpRanges': range names must be unique.")
    return SubnetRequest(
        name=name,
        network=last(given.text("network")),
        primary=primary,
        secondary=secondary,
        description=given.text("description"),
        private_google_access=given.boolean("privateIpGoogleAccess"),
    )


def _secondary(given: Fields, i: int) -> dict[str, str]:
    name = given.text("rangeName")
    if not validate.COMPUTE_NAME.fullmatch(name):
        raise e.invalid(
            f"Invalid value for field 'resource.secondaryIpRanges[{i}].rangeName': {validate.shown(name)}."
        )
    cidr = _cidr(given.text("ipCidrRange"), f"resource.secondaryIpRanges[{i}].ipCidrRange")
    return {"rangeName": name, "ipCidrRange": cidr}


def _cidr(value: str, field: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise e.invalid(
            f"Invalid value for field '{field}': {validate.shown(value)}. Invalid IPCidrRange."
        ) from None
    if not isinstance(net, ipaddress.IPv4Network) or not 8 <= net.prefixlen <= 29 or not net.is_private:
        raise e.invalid(f"Invalid value for field '{field}': '{value}'. Invalid IPCidrRange: {value}.")
    return value


def build_subnet(
    req: SubnetRequest, *, project: str, region: str, network_link: str, base: str, created: str
) -> ComputeRecord:
    net = ipaddress.IPv4Network(req.primary)
    view = {
        "kind": "compute#subnetwork",
        "id": str(secrets.randbits(63)),
        "creationTimestamp": created,
        "name": req.name,
        "description": req.description,
        "network": network_link,
        "ipCidrRange": req.primary,
        "gatewayAddress": str(net.network_address + 1),
        "region": f"{base}/regions/{region}",
        "selfLink": f"{base}/regions/{region}/subnetworks/{req.name}",
        "privateIpGoogleAccess": req.private_google_access,
        "secondaryIpRanges": list(req.secondary),
        "fingerprint": secrets.token_urlsafe(8),
        "stackType": "IPV4_ONLY",
        "purpose": "PRIVATE",
    }
    return ComputeRecord(project, view)


def ranges(subnets: Iterable[ComputeRecord]) -> Iterator[tuple[ComputeRecord, ipaddress.IPv4Network]]:
    """Every range of these subnets, primary and secondary, with the subnet it belongs to."""
    for subnet in subnets:
        listed = subnet.view.get("secondaryIpRanges")
        secondary = (
            [r.get("ipCidrRange") for r in listed if isinstance(r, dict)] if isinstance(listed, list) else []
        )
        for cidr in [subnet.view.get("ipCidrRange"), *secondary]:
            net = _network(cidr)
            if net is not None:  # a hand-edited state file's nonsense holds no range
                yield subnet, net


def _network(cidr: Any) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(cidr)
    except (TypeError, ValueError):
        return None


def conflict(wanted: Iterable[str], subnets: Iterable[ComputeRecord]) -> str | None:
    """Compute's message when one of `wanted` overlaps a range of the network's other subnets."""
    existing = list(ranges(subnets))
    for cidr in wanted:
        for subnet, net in existing:
            if ipaddress.IPv4Network(cidr).overlaps(net):
                return CONFLICT.format(cidr=cidr, name=subnet.name, region=last(subnet.view["region"]))
    return None


def primary_conflict(wanted: ipaddress.IPv4Network, subnets: Iterable[ComputeRecord]) -> str | None:
    """Compute's message when `wanted` overlaps the primary range of one of these subnets."""
    for subnet in subnets:
        if wanted.overlaps(ipaddress.IPv4Network(subnet.view["ipCidrRange"])):
            return CONFLICT.format(cidr=wanted, name=subnet.name, region=last(subnet.view["region"]))
    return None
