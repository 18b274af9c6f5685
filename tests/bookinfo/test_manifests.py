"""Bookinfo's manifests per cluster, from the spec (pure)."""

from __future__ import annotations

from typing import Any

from meshwright import bookinfo
from meshwright.spec import MeshSpec, MtlsMode, load_spec

SPEC = "deployments/sandbox.yaml"


def _spec(version: str = "1.30.3") -> MeshSpec:
    spec = load_spec(SPEC)
    return spec.model_copy(update={"istio": spec.istio.model_copy(update={"version": version})})


def _by_kind(items: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in items if m["kind"] == kind}


def test_every_cluster_gets_the_four_services_and_an_injected_namespace() -> None:
    spec = _spec()
    for c in spec.clusters:
        items = bookinfo.manifests(spec, c.name)
        assert items[0]["metadata"]["labels"] == {"istio-injection": "enabled"}
        services = _by_kind(items, "Service")
        assert sorted(services) == sorted(bookinfo.SERVICES)
        assert all(s["spec"]["ports"] == [{"port": 9080, "name": "http"}] for s in services.values())


def test_deployments_follow_the_placement() -> None:
    spec = _spec()
    assert sorted(_by_kind(bookinfo.manifests(spec, "west"), "Deployment")) == ["reviews-v3"]
    assert sorted(_by_kind(bookinfo.manifests(spec, "east"), "Deployment")) == ["details-v1"]
    central = _by_kind(bookinfo.manifests(spec, "central"), "Deployment")
    assert sorted(central) == ["productpage-v1", "ratings-v1", "reviews-v1", "reviews-v2"]
    assert central["reviews-v2"]["spec"]["template"]["metadata"]["labels"] == {
        "app": "reviews",
        "version": "v2",
    }


def test_reviews_name_their_cluster_and_star_colour() -> None:
    spec = _spec()
    dep = _by_kind(bookinfo.manifests(spec, "west"), "Deployment")["reviews-v3"]
    env = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CLUSTER_NAME"] == "west"
    assert env["STAR_COLOR"] == "red"
    assert env["ENABLE_RATINGS"] == "true"
    v1 = _by_kind(bookinfo.manifests(spec, "central"), "Deployment")["reviews-v1"]
    env1 = {e["name"]: e["value"] for e in v1["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "STAR_COLOR" not in env1
    assert env1["ENABLE_RATINGS"] == "false"


def test_images_move_to_istios_registry_with_1_30() -> None:
    def image(version: str) -> str:
        deps = _by_kind(bookinfo.manifests(_spec(version), "west"), "Deployment")
        return str(deps["reviews-v3"]["spec"]["template"]["spec"]["containers"][0]["image"])

    assert image("1.30.3") == "registry.istio.io/release/examples-bookinfo-reviews-v3:1.20.3"
    assert image("1.29.1") == "docker.io/istio/examples-bookinfo-reviews-v3:1.20.3"


def test_gateway_and_virtual_service_only_where_productpage_runs() -> None:
    spec = _spec()
    assert bookinfo.entry_clusters(spec) == ["central"]
    central = bookinfo.manifests(spec, "central")
    gateway = _by_kind(central, "Gateway")["bookinfo-gateway"]
    assert gateway["spec"]["selector"] == {"istio": "ingressgateway"}
    assert gateway["spec"]["servers"][0]["port"]["number"] == 80
    vs = _by_kind(central, "VirtualService")["bookinfo"]
    assert vs["spec"]["gateways"] == ["bookinfo-gateway"]
    assert {"uri": {"exact": "/productpage"}} in vs["spec"]["http"][0]["match"]
    assert {"uri": {"prefix": "/api/v1/products"}} in vs["spec"]["http"][0]["match"]
    assert not _by_kind(bookinfo.manifests(spec, "west"), "Gateway")


def test_reviews_placement_is_what_traffic_must_show() -> None:
    assert bookinfo.reviews_placement(_spec()) == {"central": ["v1", "v2"], "west": ["v3"]}


def test_a_remote_entry_gets_its_gateway_config_in_its_primary() -> None:
    spec = _spec()
    moved = spec.model_copy(
        update={
            "bookinfo": spec.bookinfo.model_copy(
                update={"placement": {"west": ["productpage-v1"], "central": ["details-v1"]}}
            )
        }
    )
    assert bookinfo.entry_clusters(moved) == ["west"]
    assert bookinfo.config_clusters(moved) == ["central"]
    assert _by_kind(bookinfo.manifests(moved, "central"), "VirtualService")
    assert not _by_kind(bookinfo.manifests(moved, "west"), "Gateway")


def test_every_cluster_gets_a_strict_namespace_policy_unless_the_spec_says_permissive() -> None:
    spec = _spec()
    for c in spec.clusters:
        policy = _by_kind(bookinfo.manifests(spec, c.name), "PeerAuthentication")["default"]
        assert policy["apiVersion"] == "security.istio.io/v1"
        assert policy["metadata"]["namespace"] == "bookinfo"
        assert policy["spec"] == {"mtls": {"mode": "STRICT"}}  # no selector: namespace-wide
    assert spec.bookinfo is not None
    relaxed = spec.model_copy(
        update={"bookinfo": spec.bookinfo.model_copy(update={"mtls": MtlsMode.PERMISSIVE})}
    )
    policy = _by_kind(bookinfo.manifests(relaxed, spec.clusters[0].name), "PeerAuthentication")["default"]
    assert policy["spec"] == {"mtls": {"mode": "PERMISSIVE"}}
