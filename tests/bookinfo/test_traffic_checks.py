"""The traffic checks of `meshwright verify` (meshwright.traffic and meshwright.findings, pure): replies as the sandbox's data plane gives them,
findings from state, and the one-line-per-problem verdict."""

from __future__ import annotations

from typing import Any

from meshwright import naming
from meshwright.findings import BookinfoState, findings
from meshwright.sandbox.mesh.dataplane import Mesh
from meshwright.sandbox.mesh.serve import Traffic
from meshwright.spec import MeshSpec
from meshwright.traffic import DETAILS_ERROR, PAGE_PATH, REVIEWS_PATH, Reply, check_traffic, read_reply
from tests.dataplane.meshes import healthy, primary_remote

N = 30


def replies(mesh: Mesh, address: str, n: int = N) -> list[Reply]:
    traffic, found = Traffic(lambda: mesh, sleep=lambda s: None), []
    for _ in range(n):
        for path in (REVIEWS_PATH, PAGE_PATH):
            status, body, _ = traffic.request(address, 80, path)
            found.append(read_reply(path, status, body))
    return found


def states(spec: MeshSpec, **override: Any) -> dict[str, BookinfoState]:
    base = {
        "namespace": True,
        "injection": True,
        "services": ["details", "productpage", "ratings", "reviews"],
        "gateways": ["bookinfo/bookinfo-gateway"],
        "virtual_services": ["bookinfo/bookinfo"],
    }
    return {
        c.name: BookinfoState(
            cluster=c.name, pod_cidr=c.pod_cidr or "", **{**base, **override.get(c.name, {})}
        )
        for c in spec.clusters
    }


def rule(spec: MeshSpec, ranges: list[str]) -> dict[str, Any]:
    return {
        "name": naming.firewall_name(spec.name),
        "network": f"global/networks/{spec.network}",
        "sourceRanges": ranges,
        "targetTags": [naming.node_tag(spec.name)],
        "allowed": [{"IPProtocol": p} for p in naming.FIREWALL_PROTOCOLS],
    }


def test_a_healthy_mesh_passes_and_counts_answers_per_cluster_and_version() -> None:
    spec = primary_remote()
    mesh, address = healthy(spec)
    report = check_traffic(spec, address, replies(mesh, address), [])
    assert report.ok, report.problems
    assert report.served == {"central": {"v1": 20, "v2": 20}, "west": {"v3": 20}}
    assert report.requests == 2 * N


def test_without_firewall_rule_the_failure_names_the_version_the_cluster_and_why() -> None:
    spec = primary_remote()
    mesh, address = healthy(spec)
    mesh.firewalls = []
    found = findings(spec, states(spec), [])
    report = check_traffic(spec, address, replies(mesh, address), found)
    assert not report.ok
    line = next(p for p in report.problems if p.startswith("reviews-v3 on west never answered"))
    assert "no firewall rule lets 10.8.0.0/14 reach west's nodes on tcp:9080" in line
    assert f"{N}/{N} requests to /productpage failed: 200 {DETAILS_ERROR}" in report.problems
    details = next(p for p in report.problems if p.startswith("details-v1 on east never answered"))
    assert "no firewall rule lets 10.8.0.0/14 reach east's nodes on tcp:9080" in details


def test_firewall_findings_name_only_the_missing_range() -> None:
    spec = primary_remote()
    found = findings(spec, states(spec), [rule(spec, ["10.16.0.0/14", "10.24.0.0/14"])])
    assert found == [
        "no firewall rule lets 10.8.0.0/14 reach west's nodes on tcp:9080",
        "no firewall rule lets 10.8.0.0/14 reach east's nodes on tcp:9080",
    ]
    assert findings(spec, states(spec), [rule(spec, [c.pod_cidr or "" for c in spec.clusters])]) == []


def test_a_missing_gateway_fails_every_request_and_is_named() -> None:
    spec = primary_remote()
    mesh, address = healthy(spec)
    gateways = mesh.clusters["central"].objects["networking.istio.io/gateways"]
    gateways[:] = [g for g in gateways if g["metadata"]["name"] != "bookinfo-gateway"]
    found = findings(spec, states(spec, central={"gateways": []}), None)
    report = check_traffic(spec, address, replies(mesh, address), found)
    assert f"{N}/{N} requests to {REVIEWS_PATH} failed: no answer" in report.problems
    assert any("central: Gateway bookinfo/bookinfo-gateway is missing" in p for p in report.problems)


def test_state_findings_cover_injection_services_sidecars_and_virtual_service() -> None:
    spec = primary_remote()
    found = findings(
        spec,
        states(
            spec,
            west={"injection": False, "without_sidecar": ["reviews-v3-1"]},
            central={"services": ["productpage", "reviews", "ratings"], "virtual_services": []},
        ),
        None,
    )
    assert "namespace bookinfo in west is not labelled istio-injection=enabled" in found
    assert "west: pod(s) without istio-proxy sidecar: reviews-v3-1" in found
    assert "Service bookinfo/details is missing in central: callers there cannot resolve details" in found
    assert "central: VirtualService bookinfo/bookinfo is missing" in found


def test_no_ingress_address_is_a_problem() -> None:
    spec = primary_remote()
    report = check_traffic(spec, None, [], [], error="the ingress gateway has no load-balancer address")
    assert report.problems[0] == "the ingress gateway has no load-balancer address"
    assert "reviews-v3 on west never answered" in report.problems


def test_reviews_without_ratings_are_named() -> None:
    spec = primary_remote()
    mesh, address = healthy(spec)
    services = mesh.clusters["west"].objects["/services"]
    services[:] = [
        s for s in services if s["metadata"]["name"] != "ratings"
    ]  # v3 in west cannot resolve ratings
    report = check_traffic(spec, address, replies(mesh, address), [])
    assert any(
        p.startswith("reviews-v3 on west answered without ratings")
        and "Ratings service is currently unavailable" in p
        for p in report.problems
    )
