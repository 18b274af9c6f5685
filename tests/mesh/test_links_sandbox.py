"""Links on the sandbox: a four-cluster mesh (one primary, three remotes) with Bookinfo built by the
real tasks, requests timed at the ingress gateway's loopback address, the pod firewall rule deleted
through the Compute API. The verify flow's steps run as task bodies (`verify_links`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.logging import disable_run_logger

from meshwright import clients, naming
from meshwright.findings import explain
from meshwright.links import judge
from meshwright.traffic import check_traffic
from meshwright.verify import Link, check
from tasks.network import ensure_firewall
from tasks.verify import (
    ingress_address,
    locate_clusters,
    observe_bookinfo,
    observe_control_plane,
    read_firewalls,
    send_traffic,
)
from tests.bookinfo.support import Built, routing_caught_up, running_mesh
from tests.mesh.test_links import four


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    yield from running_mesh(tmp_path_factory.mktemp("links"), four())


def verify_links(built: Built) -> list[Link]:
    """What verify_mesh composes, with the task bodies in line (no flow run)."""
    world, target, mesh, _ = built
    routing_caught_up(world)
    with disable_run_logger():
        found = locate_clusters.fn(mesh, target=target)
        clusters = {n: a for n, a in found.items() if a is not None}
        seen = {
            n: observe_control_plane.fn(mesh, a, found, target=target, settle=2.0)
            for n, a in clusters.items()
        }
        address = ingress_address.fn(mesh, found, target=target)
        assert address is not None
        sent = send_traffic.fn(address, requests=10, warmup=2.0)
        states = {n: observe_bookinfo.fn(mesh, a, target=target) for n, a in clusters.items()}
        causes = explain(mesh, states, read_firewalls.fn(mesh, target=target))
    assert check(mesh, seen).ok
    traffic = check_traffic(mesh, address, sent, [f.text for f in causes])
    return judge(mesh, seen, traffic=traffic, replies=sent, causes=causes)


def test_a_healthy_mesh_has_its_three_links_ok_with_measured_latency(built: Built) -> None:
    links = verify_links(built)
    assert [(k.primary, k.cluster, k.ok) for k in links] == [
        ("central", "west", True),
        ("central", "east", True),
        ("central", "north", True),
    ]
    for link in links:
        assert link.served
        assert link.served > 0
        p50, p95 = link.latency_ms.p50, link.latency_ms.p95
        assert p50 is not None
        assert p95 is not None
        assert 0 < p50 <= p95 < 10_000  # milliseconds of real requests through the loopback gateway


def test_without_the_pod_firewall_rule_every_broken_link_names_the_firewall(built: Built) -> None:
    _, target, mesh, clusters = built
    cloud = clients.cloud(target)
    cloud.firewalls.delete(project=mesh.project, firewall=naming.firewall_name(mesh.name)).result()
    try:
        links = verify_links(built)
    finally:
        with disable_run_logger():
            ensure_firewall.fn(mesh, [a.pod_cidr for a in clusters.values()], target=target, expires=None)
    broken = [k for k in links if not k.ok]
    assert {k.cluster for k in broken} == {"west", "east", "north"}
    assert all(k.layer == "firewall" and "firewall" in k.reason for k in broken), broken
    assert all(k.served == 0 and k.latency_ms.p95 is None for k in broken)
