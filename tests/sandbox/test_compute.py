"""The real google-cloud-compute clients against the Compute emulator."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gx
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from meshwright.sandbox.faults import FaultRule
from meshwright.sandbox.world import World
from tests.support import PROJECT

PROTOCOLS = ["tcp", "udp", "icmp", "esp", "ah", "sctp"]


def rule(name: str = "meshwright-m-pods", ranges: tuple[str, ...] = ("10.8.0.0/14",)) -> compute_v1.Firewall:
    return compute_v1.Firewall(
        name=name,
        network="global/networks/default",
        direction="INGRESS",
        priority=900,
        source_ranges=list(ranges),
        target_tags=["meshwright-m-node"],
        allowed=[compute_v1.Allowed(I_p_protocol=p) for p in PROTOCOLS],
    )


def test_firewall_lifecycle(firewalls: compute_v1.FirewallsClient) -> None:
    firewalls.insert(project=PROJECT, firewall_resource=rule()).result(timeout=5)
    got = firewalls.get(project=PROJECT, firewall="meshwright-m-pods")
    assert (got.priority, got.direction, list(got.target_tags)) == (900, "INGRESS", ["meshwright-m-node"])
    assert [a.I_p_protocol for a in got.allowed] == PROTOCOLS
    assert got.network.endswith("/global/networks/default")
    patch = compute_v1.Firewall(source_ranges=["10.8.0.0/14", "10.12.0.0/14"])
    firewalls.patch(project=PROJECT, firewall="meshwright-m-pods", firewall_resource=patch).result(timeout=5)
    got = firewalls.get(project=PROJECT, firewall="meshwright-m-pods")
    assert list(got.source_ranges) == ["10.8.0.0/14", "10.12.0.0/14"]
    assert got.priority == 900
    assert [f.name for f in firewalls.list(project=PROJECT)] == ["meshwright-m-pods"]
    firewalls.delete(project=PROJECT, firewall="meshwright-m-pods").result(timeout=5)
    with pytest.raises(gx.NotFound, match="was not found"):
        firewalls.get(project=PROJECT, firewall="meshwright-m-pods")


def test_duplicate_insert_conflicts_and_bad_rules_are_rejected(firewalls: compute_v1.FirewallsClient) -> None:
    firewalls.insert(project=PROJECT, firewall_resource=rule()).result(timeout=5)
    with pytest.raises(gx.Conflict, match="already exists"):
        firewalls.insert(project=PROJECT, firewall_resource=rule())
    with pytest.raises(gx.BadRequest, match=r"resource\.name"):
        firewalls.insert(project=PROJECT, firewall_resource=rule(name="Bad_Name"))
    with pytest.raises(gx.BadRequest, match="CIDR"):
        firewalls.insert(project=PROJECT, firewall_resource=rule(name="r2", ranges=("10.0.0.0/99",)))
    with pytest.raises(gx.NotFound):
        firewalls.delete(project=PROJECT, firewall="ghost")


def test_global_operations_get_and_wait(world: World, firewalls: compute_v1.FirewallsClient) -> None:
    op = firewalls.insert_unary(project=PROJECT, firewall_resource=rule())
    ops = compute_v1.GlobalOperationsClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=world.base_url()),
    )
    assert ops.get(project=PROJECT, operation=op.name).status == compute_v1.Operation.Status.DONE
    assert ops.wait(project=PROJECT, operation=op.name).status == compute_v1.Operation.Status.DONE


def test_failed_operation_raises_in_the_client(world: World, firewalls: compute_v1.FirewallsClient) -> None:
    world.faults.replace(
        [
            FaultRule(
                api="compute", operation="insert", fail="Quota 'FIREWALLS' exceeded. Limit: 100.0 globally."
            )
        ]
    )
    with pytest.raises(gx.BadRequest, match=r"Quota 'FIREWALLS' exceeded"):
        firewalls.insert(project=PROJECT, firewall_resource=rule()).result(timeout=5)
    with pytest.raises(gx.NotFound):
        firewalls.get(project=PROJECT, firewall="meshwright-m-pods")


def test_networks(world: World) -> None:
    nets = compute_v1.NetworksClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=world.base_url()),
    )
    assert nets.get(project=PROJECT, network="default").name == "default"
    with pytest.raises(gx.NotFound):
        nets.get(project=PROJECT, network="mesh-vpc")
    nets.insert(
        project=PROJECT, network_resource=compute_v1.Network(name="mesh-vpc", auto_create_subnetworks=True)
    ).result(timeout=5)
    assert sorted(n.name for n in nets.list(project=PROJECT)) == ["default", "mesh-vpc"]


def test_list_filters(firewalls: compute_v1.FirewallsClient) -> None:
    for name in ("meshwright-a-pods", "meshwright-b-pods", "other"):
        firewalls.insert(project=PROJECT, firewall_resource=rule(name=name)).result(timeout=5)

    def names(expression: str) -> list[str]:
        return [
            f.name
            for f in firewalls.list(
                request=compute_v1.ListFirewallsRequest(project=PROJECT, filter=expression)
            )
        ]

    assert names('name = "meshwright-*"') == ["meshwright-a-pods", "meshwright-b-pods"]
    assert names("name != other") == ["meshwright-a-pods", "meshwright-b-pods"]
    assert names("name eq meshwright-b-.*") == ["meshwright-b-pods"]
    assert names("(priority = 900) AND (name ne meshwright-.*)") == ["other"]
    with pytest.raises(gx.BadRequest, match="filter"):
        names("name ~ x")
