"""PeerAuthentication as istiod composes it and as the proxies enforce it (pure: hand-built snapshots).

Precedence follows istio/istio pilot/pkg/security/authn/policy_applier.go `ComposePeerAuthentication`;
who reaches whom under STRICT / PERMISSIVE / DISABLE follows tests/integration/security/reachability_test.go
("global mtls strict": every call succeeds except from a caller without sidecar; "global mtls
disabled": nothing crosses networks)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from meshwright.sandbox.mesh import dataplane, peerauth
from meshwright.sandbox.mesh.dataplane import Endpoint, Failure, Mesh
from tests.dataplane.meshes import CENTRAL, healthy, mesh_spec, multi_network, primary_remote
from tests.dataplane.test_routing import served

BOOKINFO = "bookinfo"
PRODUCTPAGE = {"app": "productpage", "version": "v1"}


def policy(
    name: str,
    namespace: str,
    mode: str | None,
    *,
    selector: dict[str, str] | None = None,
    ports: dict[str, str] | None = None,
    created: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"mtls": {"mode": mode}} if mode else {}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = {p: {"mode": m} for p, m in ports.items()}
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created}, "spec": spec}


def mode(policies: list[dict[str, Any]], port: int = 9080) -> str:
    return peerauth.compose(policies, namespace=BOOKINFO, labels=PRODUCTPAGE).on(port)


def test_without_any_policy_a_proxy_is_permissive() -> None:
    assert mode([]) == "PERMISSIVE"


def test_namespace_beats_mesh_and_unset_inherits_the_mesh_mode() -> None:
    mesh_strict = policy("default", "istio-system", "STRICT")
    assert mode([mesh_strict]) == "STRICT"
    assert mode([mesh_strict, policy("default", BOOKINFO, "PERMISSIVE")]) == "PERMISSIVE"
    assert mode([mesh_strict, policy("default", BOOKINFO, None)]) == "STRICT"
    assert mode([policy("default", "other", "DISABLE")]) == "PERMISSIVE"


def test_a_workload_policy_beats_its_namespace_only_where_its_selector_matches() -> None:
    strict = policy("default", BOOKINFO, "STRICT")
    assert mode([strict, policy("pp", BOOKINFO, "DISABLE", selector={"app": "productpage"})]) == "DISABLE"
    assert mode([strict, policy("rv", BOOKINFO, "DISABLE", selector={"app": "reviews"})]) == "STRICT"
    in_root = policy("pp", "istio-system", "DISABLE", selector={"app": "productpage"})
    assert mode([strict, in_root]) == "STRICT"  # a selector in the root namespace is ignored


def test_the_oldest_policy_of_a_scope_wins_then_the_first_name() -> None:
    older = policy("z-old", BOOKINFO, "DISABLE", created="2026-01-01T00:00:00Z")
    newer = policy("a-new", BOOKINFO, "STRICT", created="2026-02-01T00:00:00Z")
    assert mode([newer, older]) == "DISABLE"
    twin = policy("a-twin", BOOKINFO, "STRICT", created="2026-01-01T00:00:00Z")
    assert mode([older, twin]) == "STRICT"


def test_port_level_mtls_overrides_the_workload_and_unset_ports_inherit() -> None:
    pp = policy(
        "pp", BOOKINFO, "STRICT", selector={"app": "productpage"}, ports={"9080": "DISABLE", "15090": "UNSET"}
    )
    assert (mode([pp], 9080), mode([pp], 15090), mode([pp], 8080)) == ("DISABLE", "STRICT", "STRICT")


# -- the data plane --------------------------------------------------------------------------


def _set(mesh: Mesh, cluster: str, *policies: dict[str, Any]) -> None:
    mesh.clusters[cluster].objects[peerauth.PEER_AUTHENTICATIONS] = list(policies)


def _bare_caller(mesh: Mesh, cluster: str) -> dict[str, Any]:
    """A pod without sidecar in Bookinfo's namespace (`sidecar.istio.io/inject: "false"`)."""
    pod = {
        "metadata": {"name": "probe", "namespace": BOOKINFO, "labels": {"sidecar.istio.io/inject": "false"}},
        "spec": {"containers": [{"name": "curl"}]},
        "status": {"phase": "Running", "podIP": "10.8.9.9"},
    }
    mesh.clusters[cluster].objects["/pods"].append(pod)
    return pod


def _plaintext_call(mesh: Mesh) -> Endpoint | Failure:
    caller = _bare_caller(mesh, "central")
    return dataplane.connect(mesh, "central", caller, "productpage", 9080, pick=lambda key, n: 0)


def test_bookinfos_own_strict_policy_resets_a_caller_without_sidecar() -> None:
    mesh, _ = healthy(primary_remote())
    got = _plaintext_call(mesh)
    assert isinstance(got, Failure)
    assert (got.status, got.transport) == (0, dataplane.RESET)
    assert (
        "productpage-v1-7d9f8 in central is STRICT on 9080: plaintext from a caller without sidecar"
        in got.why
    )


def test_permissive_and_disable_take_the_plaintext_caller() -> None:
    for relaxed in ("PERMISSIVE", "DISABLE"):
        mesh, _ = healthy(primary_remote())
        _set(mesh, "central", policy("default", BOOKINFO, relaxed))
        assert isinstance(_plaintext_call(mesh), Endpoint), relaxed


def test_under_strict_mesh_traffic_crosses_clusters_and_networks() -> None:
    mesh, address = healthy(primary_remote())
    assert served(mesh, address) == Counter({"central/v1": 4, "central/v2": 4, "west/v3": 4})
    mesh, address = healthy(multi_network())
    assert served(mesh, address) == Counter({"alpha/v1": 4, "beta/v2": 4, "beta/v3": 4})


def test_disable_keeps_traffic_on_its_own_network() -> None:
    mesh, address = healthy(multi_network())
    for cluster in ("alpha", "beta"):
        _set(mesh, cluster, policy("default", BOOKINFO, "DISABLE"))
    assert served(mesh, address) == Counter({"alpha/v1": 12})


def test_a_caller_whose_istiod_says_disable_is_reset_by_a_strict_endpoint() -> None:
    east = {"name": "east", "location": "us-east1-b", "pod_cidr": "10.24.0.0/14"}
    spec = mesh_spec(
        "mp", [CENTRAL, east], {"central": ["productpage-v1", "details-v1"], "east": ["reviews-v1"]}
    )
    mesh, address = healthy(spec)
    _set(mesh, "central", policy("default", BOOKINFO, "DISABLE"))
    assert served(mesh, address, n=2) == Counter({"503": 2})
