"""The sandbox's data plane routes as Istio would: healthy meshes serve every placed reviews version,
and each real misconfiguration has its real effect (pure: hand-built snapshots, no HTTP)."""

from __future__ import annotations

import json
import time
from collections import Counter

from meshwright.sandbox.mesh import apps, configcheck
from meshwright.sandbox.mesh.dataplane import Mesh
from meshwright.sandbox.mesh.revisions import ControlPlane
from meshwright.sandbox.mesh.serve import Traffic
from tests.dataplane.meshes import healthy, multi_network, pem, primary_remote

REVIEWS = "/api/v1/products/0/reviews"


def _traffic(mesh: Mesh) -> Traffic:
    return Traffic(lambda: mesh, sleep=lambda seconds: None)


def served(mesh: Mesh, address: str, n: int = 12) -> Counter[str]:
    """Which cluster/version answered each of n requests for the reviews ("503" etc. when none did)."""
    traffic, seen = _traffic(mesh), Counter[str]()
    for _ in range(n):
        status, body, _ = traffic.request(address, 80, REVIEWS)
        if status != 200:
            seen[str(status)] += 1
            continue
        doc = json.loads(body)
        seen[f"{doc['clustername']}/{doc['podname'].split('-')[1]}"] += 1
    return seen


def _drop(mesh: Mesh, cluster: str, type_key: str, name: str) -> None:
    objects = mesh.clusters[cluster].objects[type_key]
    objects[:] = [o for o in objects if o["metadata"]["name"] != name]


def test_primary_remote_mesh_serves_every_version_round_robin() -> None:
    mesh, address = healthy(primary_remote())
    assert served(mesh, address) == Counter({"central/v1": 4, "central/v2": 4, "west/v3": 4})


def test_multi_network_mesh_reaches_the_other_network_through_its_eastwest_gateway() -> None:
    mesh, address = healthy(multi_network())
    assert served(mesh, address) == Counter({"alpha/v1": 4, "beta/v2": 4, "beta/v3": 4})


def test_reviews_v2_and_v3_show_stars_in_their_colour() -> None:
    mesh, address = healthy(primary_remote())
    traffic = _traffic(mesh)
    ratings = [
        json.loads(traffic.request(address, 80, REVIEWS)[1])["reviews"][0].get("rating") for _ in range(3)
    ]
    assert ratings == [None, {"stars": 5, "color": "black"}, {"stars": 5, "color": "red"}]


def test_productpage_names_the_pod_and_cluster_that_served_reviews() -> None:
    mesh, address = healthy(primary_remote())
    traffic = _traffic(mesh)
    pages = [traffic.request(address, 80, "/productpage")[1].decode() for _ in range(3)]
    assert "<u>reviews-v3-7d9f8</u> on cluster <u>west</u>" in pages[2]
    assert all("William Shakespeare" in p for p in pages)  # details answered from east


def test_without_firewall_rule_west_never_answers_and_the_reason_is_named() -> None:
    mesh, address = healthy(primary_remote())
    mesh.firewalls = []
    seen = served(mesh, address)
    assert "west/v3" not in seen
    assert sum(seen.values()) == 12  # productpage's second try lands on central: the requests still succeed
    assert seen["central/v1"] + seen["central/v2"] == 12
    traffic = _traffic(mesh)
    traffic.request(address, 80, REVIEWS)
    traffic.request(address, 80, REVIEWS)
    traffic.request(address, 80, REVIEWS)
    assert "no firewall rule lets 10.8.0.0/14 reach west's nodes on tcp:9080" in traffic.failures


def test_unreachable_details_gives_productpages_own_error() -> None:
    mesh, address = healthy(primary_remote())
    mesh.firewalls = []
    status, body, _ = _traffic(mesh).request(address, 80, "/api/v1/products/0")
    assert status == 503
    assert json.loads(body) == {"error": "Sorry, product details are currently unavailable for this book."}


def test_a_rule_missing_one_pod_range_cuts_that_clusters_callers() -> None:
    mesh, address = healthy(primary_remote())
    mesh.firewalls[0]["sourceRanges"] = ["10.16.0.0/14", "10.24.0.0/14"]  # central's range left out
    traffic = _traffic(mesh)
    traffic.request(address, 80, REVIEWS)
    assert "west/v3" not in served(mesh, address)
    assert traffic.request(address, 80, "/api/v1/products/0")[0] == 503
    assert "no firewall rule lets 10.8.0.0/14 reach east's nodes on tcp:9080" in traffic.failures


def test_a_higher_priority_deny_rule_wins() -> None:
    mesh, address = healthy(primary_remote())
    deny = {**mesh.firewalls[0], "name": "deny", "priority": 100, "denied": [{"IPProtocol": "tcp"}]}
    del deny["allowed"]
    mesh.firewalls.append(deny)
    assert "west/v3" not in served(mesh, address)


def test_different_roots_break_mutual_tls_between_primaries() -> None:
    mesh, address = healthy(multi_network())
    mesh.clusters["beta"].objects["/secrets"][0]["data"]["root-cert.pem"] = pem("another")
    assert served(mesh, address) == Counter({"alpha/v1": 6, "503": 6})  # v2 then v3 fail: both tries lost
    traffic = _traffic(mesh)
    traffic.request(address, 80, REVIEWS)
    traffic.request(address, 80, REVIEWS)
    assert any(f.startswith("mTLS between alpha and beta fails") for f in traffic.failures)


def test_a_missing_remote_secret_hides_the_remotes_endpoints() -> None:
    mesh, address = healthy(primary_remote())
    mesh.synced[ControlPlane("central")].discard("west")
    assert served(mesh, address) == Counter({"central/v1": 6, "central/v2": 6})


def test_pods_without_sidecar_are_no_endpoints() -> None:
    mesh, address = healthy(primary_remote())
    for c in mesh.clusters.values():
        for pod in c.objects["/pods"]:
            if pod["metadata"]["namespace"] == "bookinfo":
                pod["spec"]["containers"] = [
                    x for x in pod["spec"]["containers"] if x["name"] != "istio-proxy"
                ]
    status, body, _ = _traffic(mesh).request(address, 80, REVIEWS)
    assert (status, body) == (503, b"no healthy upstream")


def test_without_gateway_nothing_listens_and_without_virtual_service_envoy_answers_404() -> None:
    mesh, address = healthy(primary_remote())
    _drop(mesh, "central", "networking.istio.io/gateways", "bookinfo-gateway")
    assert _traffic(mesh).request(address, 80, REVIEWS)[:2] == (0, b"")
    mesh, address = healthy(primary_remote())
    _drop(mesh, "central", "networking.istio.io/virtualservices", "bookinfo")
    assert _traffic(mesh).request(address, 80, REVIEWS)[:2] == (404, b"")


def test_a_gateway_on_8080_misses_the_helm_gateways_port_80() -> None:
    mesh, address = healthy(primary_remote())
    gateways = mesh.clusters["central"].objects["networking.istio.io/gateways"]
    gateway = next(g for g in gateways if g["metadata"]["name"] == "bookinfo-gateway")
    gateway["spec"]["servers"][0]["port"]["number"] = 8080  # samples/bookinfo's port: istio#50693
    assert _traffic(mesh).request(address, 80, REVIEWS)[0] == 0


def test_paths_outside_the_virtual_service_are_404() -> None:
    mesh, address = healthy(primary_remote())
    assert _traffic(mesh).request(address, 80, "/admin")[:2] == (404, b"")
    assert _traffic(mesh).request(address, 80, "/productpage")[0] == 200


def test_a_service_missing_in_the_callers_cluster_does_not_resolve() -> None:
    mesh, address = healthy(primary_remote())
    _drop(
        mesh, "central", "/services", "details"
    )  # details runs in east; productpage in central cannot name it
    traffic = _traffic(mesh)
    status, body, _ = traffic.request(address, 80, "/api/v1/products/0")
    assert status == 500
    assert "error" in json.loads(body)
    assert any("details.bookinfo does not resolve in central" in f for f in traffic.failures)


def test_multi_network_without_cross_network_gateway_never_reaches_the_other_network() -> None:
    mesh, address = healthy(multi_network())
    for c in ("alpha", "beta"):
        _drop(mesh, c, "networking.istio.io/gateways", "cross-network-gateway")
    assert served(mesh, address) == Counter({"alpha/v1": 6, "503": 6})


def test_the_ingress_gateway_routes_by_istiods_registry_not_by_its_own_clusters_dns() -> None:
    # productpage's Service gone from central (the gateway's cluster) but kept in west and east: the
    # gateway's Envoy still knows the host from istiod, and finds no endpoint behind it (503), where
    # a sidecar's DNS lookup would have failed.
    mesh, address = healthy(primary_remote())
    _drop(mesh, "central", "/services", "productpage")
    traffic = _traffic(mesh)
    assert traffic.request(address, 80, "/productpage")[0] == 503
    assert not any("does not resolve" in f for f in traffic.failures)
    assert any("knows no ready endpoint of bookinfo/productpage" in f for f in traffic.failures)


def _route_first(mesh: Mesh, regex: str) -> None:
    """Put a route matching `regex` before Bookinfo's own routes (as if admission had not checked it)."""
    vs = next(
        v
        for v in mesh.clusters["central"].objects["networking.istio.io/virtualservices"]
        if "http" in v["spec"]
    )
    first = {"match": [{"uri": {"regex": regex}}], "route": [{"destination": {"host": "productpage"}}]}
    vs["spec"]["http"].insert(0, first)


def test_a_regex_envoy_would_refuse_matches_nothing_and_the_other_routes_still_serve() -> None:
    mesh, address = healthy(primary_remote())
    _route_first(mesh, "(unclosed")
    assert _traffic(mesh).request(address, 80, "/(unclosed")[:2] == (404, b"")
    assert _traffic(mesh).request(address, 80, "/productpage")[0] == 200


def test_a_catastrophic_regex_is_matched_in_linear_time_as_envoys_re2_does() -> None:
    mesh, address = healthy(primary_remote())
    _route_first(mesh, "/(a+)+b")
    started = time.monotonic()
    assert _traffic(mesh).request(address, 80, "/" + "a" * 32)[:2] == (404, b"")
    # Not a speed check: Python's backtracking `re` takes 2^32 steps (hours) here, RE2 microseconds.
    assert time.monotonic() - started < 5.0
    assert _traffic(mesh).request(address, 80, "/aab")[0] == 404  # routed: productpage's own 404 page
    assert _traffic(mesh).request(address, 80, "/aab")[1] == apps.NOT_FOUND


def test_a_regex_over_envoys_program_size_matches_nothing() -> None:
    mesh, address = healthy(primary_remote())
    huge = r"/\pL{100}"  # admitted by Istio's validation, but an RE2 program of about 120000 > 32768
    assert configcheck.regex_error(huge, "uri") is None
    _route_first(mesh, huge)
    assert _traffic(mesh).request(address, 80, "/" + "x" * 100)[:2] == (404, b"")
