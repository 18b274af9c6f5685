"""Each link's verdict (meshwright.links, pure): from control-plane observations, replies as the
sandbox's data plane gives them for a hand-built mesh, and findings; the layer that broke is named."""

from __future__ import annotations

import pytest

from meshwright.findings import BookinfoState, explain
from meshwright.links import judge, link_rows, links_of, percentile, took_part
from meshwright.sandbox.mesh.dataplane import Mesh
from meshwright.sandbox.mesh.serve import Traffic
from meshwright.spec import MeshSpec
from meshwright.traffic import PAGE_PATH, REVIEWS_PATH, Reply, check_traffic, read_reply
from meshwright.verify import Observation
from tests.dataplane.meshes import CENTRAL, EAST, WEST, healthy, mesh_spec

ROOT, OTHER = "ab" * 32, "cd" * 32
NORTH = {
    "name": "north",
    "location": "northamerica-northeast1-a",
    "pod_cidr": "10.32.0.0/14",
    "primary": "central",
}
N = 30


def four() -> MeshSpec:
    """One primary and three remotes, each remote serving a reviews version, details beside v2."""
    return mesh_spec(
        "four",
        [CENTRAL, WEST, EAST, NORTH],
        {
            "central": ["productpage-v1", "ratings-v1"],
            "west": ["reviews-v1"],
            "east": ["reviews-v2", "details-v1"],
            "north": ["reviews-v3"],
        },
    )


def observed(spec: MeshSpec) -> dict[str, Observation]:
    """Every cluster as a whole mesh shows it: the primary syncs every remote, one root."""
    seen = {
        c.name: Observation(cluster=c.name, root=ROOT, istiod_addresses=["203.0.113.7"]) for c in spec.remotes
    }
    for p in spec.primaries:
        synced = {c.name: "synced" for c in spec.clusters}
        seen[p.name] = Observation(
            cluster=p.name, root=ROOT, clusterz=synced, eastwest_addresses=["203.0.113.7"]
        )
    return seen


def replies(mesh: Mesh, address: str) -> list[Reply]:
    """N of each request, timed 1, 2, 3, ... ms in the order they were sent."""
    traffic, found = Traffic(lambda: mesh, sleep=lambda s: None), list[Reply]()
    for _ in range(N):
        for path in (REVIEWS_PATH, PAGE_PATH):
            status, body, _ = traffic.request(address, 80, path)
            found.append(read_reply(path, status, body, ms=float(len(found) + 1)))
    return found


def states(spec: MeshSpec, **override: dict[str, object]) -> dict[str, BookinfoState]:
    whole = {
        "namespace": True,
        "injection": True,
        "services": ["details", "productpage", "ratings", "reviews"],
        "gateways": ["bookinfo/bookinfo-gateway"],
        "virtual_services": ["bookinfo/bookinfo"],
    }
    return {
        c.name: BookinfoState.model_validate(
            {"cluster": c.name, "pod_cidr": c.pod_cidr, **whole, **override.get(c.name, {})}
        )
        for c in spec.clusters
    }


def test_a_healthy_mesh_has_one_ok_link_per_remote_with_the_latency_of_what_it_served() -> None:
    spec = four()
    mesh, address = healthy(spec)
    sent = replies(mesh, address)
    links = judge(spec, observed(spec), traffic=check_traffic(spec, address, sent, []), replies=sent)
    assert [(k.primary, k.cluster, k.ok, k.reason) for k in links] == [
        ("central", "west", True, ""),
        ("central", "east", True, ""),
        ("central", "north", True, ""),
    ]
    for link in links:
        times = [r.ms or 0 for r in sent if link.cluster in took_part(spec, r)]
        assert link.served == len(times) > 0
        assert (link.latency_ms.p50, link.latency_ms.p95) == (percentile(times, 0.5), percentile(times, 0.95))
        assert (link.api, link.synced, link.same_root) == ("ok", "synced", True)
    east = next(k for k in links if k.cluster == "east")
    assert east.served == 2 * N - sum(1 for r in sent if r.path == REVIEWS_PATH and r.version != "v2")


def test_without_the_firewall_rule_every_remote_link_names_the_firewall() -> None:
    spec = four()
    mesh, address = healthy(spec)
    mesh.firewalls = []
    sent = replies(mesh, address)
    causes = explain(spec, states(spec), [])
    report = check_traffic(spec, address, sent, [f.text for f in causes])
    links = judge(spec, observed(spec), traffic=report, replies=sent, causes=causes)
    assert {(k.cluster, k.ok, k.layer) for k in links} == {
        ("west", False, "firewall"),
        ("east", False, "firewall"),
        ("north", False, "firewall"),
    }
    west = next(k for k in links if k.cluster == "west")
    assert (
        west.reason
        == "no firewall rule lets 10.8.0.0/14, 10.24.0.0/14, 10.32.0.0/14 reach west's nodes on tcp:9080"
    )
    assert (west.served, west.latency_ms.p50, west.latency_ms.p95) == (0, None, None)


def test_a_remote_whose_pods_may_not_leave_answers_without_ratings_and_names_that_firewall_gap() -> None:
    spec = four()
    mesh, address = healthy(spec)
    mesh.firewalls[0]["sourceRanges"] = [c.pod_cidr for c in spec.clusters if c.name != "east"]
    sent = replies(mesh, address)
    causes = explain(spec, states(spec), mesh.firewalls)
    report = check_traffic(spec, address, sent, [f.text for f in causes])
    (link,) = [
        k for k in judge(spec, observed(spec), traffic=report, replies=sent, causes=causes) if not k.ok
    ]
    assert (link.cluster, link.layer) == ("east", "firewall")
    assert link.reason.startswith("no firewall rule lets 10.24.0.0/14 reach central's nodes on tcp:9080")
    assert link.served
    assert link.latency_ms.p95
    assert any("reviews-v2 on east answered without ratings" in p for p in report.problems)


def broken_secret(seen: dict[str, Observation], why: str) -> None:
    seen["central"].clusterz = {"central": "synced", "west": "synced", "east": "synced"}
    seen["central"].secrets = {"north": why}


def other_root(seen: dict[str, Observation], why: str) -> None:
    seen["north"].root = OTHER


def elsewhere(seen: dict[str, Observation], why: str) -> None:
    seen["north"].istiod_addresses = ["198.51.100.9"]


def gone(seen: dict[str, Observation], why: str) -> None:
    seen["north"] = Observation(cluster="north", error="the cluster does not exist")


@pytest.mark.parametrize(
    ("breakage", "why", "layer", "reason"),
    [
        (broken_secret, "missing", "remote secret", "central does not see north: not listed (remote secret istio-remote-secret-north: missing)"),
        (broken_secret, "token rejected", "remote secret", "(remote secret istio-remote-secret-north: token rejected)"),
        (broken_secret, "RBAC: istio-reader-service-account cannot list namespaces", "RBAC", "cannot list namespaces"),
        (other_root, "", "root", f"north's cacerts root {OTHER[:16]} differs from central's {ROOT[:16]}"),
        (elsewhere, "", "gateway", "north: Service istiod points to 198.51.100.9, not to central's east-west gateway 203.0.113.7"),
        (gone, "", "cluster", "north: the cluster does not exist"),
    ],
    ids=["secret-missing", "token", "rbac", "root", "gateway", "cluster"],
)  # fmt: skip
def test_a_broken_control_plane_names_its_layer_on_that_link_only(
    breakage: object, why: str, layer: str, reason: str
) -> None:
    spec = four()
    seen = observed(spec)
    breakage(seen, why)  # type: ignore[operator]
    links = {k.cluster: k for k in judge(spec, seen)}
    assert (links["north"].ok, links["north"].layer) == (False, layer)
    assert reason in links["north"].reason
    assert all(k.ok and k.served is None for n, k in links.items() if n != "north")


def test_a_remote_without_injection_is_a_sidecar_break_and_an_unexplained_one_is_endpoints() -> None:
    spec = four()
    mesh, address = healthy(spec)
    north = mesh.clusters["north"].objects["/pods"]
    for pod in north:
        pod["spec"]["containers"] = [c for c in pod["spec"]["containers"] if c["name"] != "istio-proxy"]
    sent = replies(mesh, address)
    causes = explain(spec, states(spec, north={"injection": False}), None)
    report = check_traffic(spec, address, sent, [f.text for f in causes])
    (link,) = [
        k for k in judge(spec, observed(spec), traffic=report, replies=sent, causes=causes) if not k.ok
    ]
    assert (link.cluster, link.layer) == ("north", "sidecar")
    assert link.reason == "namespace bookinfo in north is not labelled istio-injection=enabled"
    (unexplained,) = [k for k in judge(spec, observed(spec), traffic=report, replies=sent) if not k.ok]
    assert (unexplained.layer, unexplained.reason) == ("endpoints", "reviews-v3 on north never answered")


def test_only_links_of_the_primary_behind_the_ingress_are_judged_by_traffic() -> None:
    east = {k: v for k, v in EAST.items() if k != "primary"}  # a second primary
    placement = {
        "central": ["productpage-v1", "details-v1", "reviews-v1"],
        "west": ["reviews-v3", "ratings-v1"],
    }
    spec = mesh_spec("dual", [CENTRAL, east, WEST], placement)
    mesh, address = healthy(spec)
    sent = replies(mesh, address)
    seen = observed(spec)
    links = judge(spec, seen, traffic=check_traffic(spec, address, sent, []), replies=sent)
    served = {(k.primary, k.cluster): k.served for k in links}
    assert served[("central", "west")] == N
    assert served[("east", "west")] is None  # east's istiod does not configure the ingress
    assert served[("central", "east")] is None  # nothing of Bookinfo runs in east
    assert all(k.ok for k in links)


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (10.0, 19.0)
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([], 0.5) is None


def test_links_read_back_from_their_table_rows_are_the_same() -> None:
    spec = four()
    seen = observed(spec)
    seen["central"].clusterz = {"central": "synced", "west": "synced", "east": "synced"}
    seen["central"].secrets = {"north": "missing"}
    mesh, address = healthy(spec)
    sent = replies(mesh, address)
    links = judge(spec, seen, traffic=check_traffic(spec, address, sent, []), replies=sent)
    assert links_of(link_rows(links)) == links
