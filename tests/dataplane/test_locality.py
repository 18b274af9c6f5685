"""Locality failover in the sandbox's data plane, as istiod programs Envoy (pure, hand-built
snapshots): only a DestinationRule with outlierDetection turns it on (Istio's locality tests use
tests/integration/pilot/locality_test.go's rule: ROUND_ROBIN, localityLbSetting, outlierDetection)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from meshwright.sandbox.mesh import locality
from meshwright.sandbox.mesh.dataplane import Mesh
from tests.dataplane.meshes import healthy, primary_remote
from tests.dataplane.test_routing import served

REGIONS = {"central": "us-central1", "west": "us-west1", "east": "us-east1"}


def _placed(mesh: Mesh) -> Mesh:
    """One node per cluster in its region, every pod on it (the Builder places none)."""
    for name, cluster in mesh.clusters.items():
        region = REGIONS[name]
        labels = {"topology.kubernetes.io/region": region, "topology.kubernetes.io/zone": f"{region}-a"}
        cluster.objects["/nodes"] = [{"metadata": {"name": f"{name}-node", "labels": labels}}]
        for pod in cluster.objects["/pods"]:
            pod["spec"]["nodeName"] = f"{name}-node"
    return mesh


def _rule(*, outlier: bool, setting: dict[str, Any] | None = None) -> dict[str, Any]:
    policy: dict[str, Any] = {"loadBalancer": {"simple": "ROUND_ROBIN", "localityLbSetting": setting or {}}}
    if outlier:
        policy["outlierDetection"] = {"interval": "1s", "baseEjectionTime": "10m", "maxEjectionPercent": 100}
    return {
        "metadata": {"name": "reviews", "namespace": "bookinfo"},
        "spec": {"host": "reviews", "trafficPolicy": policy},
    }


def _scaled_to_zero(mesh: Mesh, cluster: str, app: str) -> None:
    pods = mesh.clusters[cluster].objects["/pods"]
    pods[:] = [p for p in pods if (p["metadata"].get("labels") or {}).get("app") != app]


def test_without_outlier_detection_the_proxies_round_robin_over_every_cluster() -> None:
    mesh, address = healthy(primary_remote())
    _placed(mesh).clusters["central"].objects["networking.istio.io/destinationrules"] = [_rule(outlier=False)]
    assert served(mesh, address) == Counter({"central/v1": 4, "central/v2": 4, "west/v3": 4})


def test_with_outlier_detection_productpage_keeps_to_its_own_region() -> None:
    mesh, address = healthy(primary_remote())
    _placed(mesh).clusters["central"].objects["networking.istio.io/destinationrules"] = [_rule(outlier=True)]
    assert served(mesh, address) == Counter({"central/v1": 6, "central/v2": 6})


def test_local_reviews_gone_from_eds_fail_over_to_the_other_region() -> None:
    mesh, address = healthy(primary_remote())
    _placed(mesh).clusters["central"].objects["networking.istio.io/destinationrules"] = [_rule(outlier=True)]
    _scaled_to_zero(mesh, "central", "reviews")
    assert served(mesh, address) == Counter({"west/v3": 12})


def test_a_rule_in_a_cluster_that_does_not_configure_the_caller_changes_nothing() -> None:
    mesh, address = healthy(primary_remote())
    _placed(mesh).clusters["west"].objects["networking.istio.io/destinationrules"] = [_rule(outlier=True)]
    assert served(mesh, address) == Counter({"central/v1": 4, "central/v2": 4, "west/v3": 4})


def test_locality_lb_switched_off_in_the_rule_round_robins_again() -> None:
    mesh, address = healthy(primary_remote())
    rule = _rule(outlier=True, setting={"enabled": False})
    _placed(mesh).clusters["central"].objects["networking.istio.io/destinationrules"] = [rule]
    assert served(mesh, address) == Counter({"central/v1": 4, "central/v2": 4, "west/v3": 4})


def test_priorities_follow_region_zone_subzone_and_the_failover_entries() -> None:
    here = ("us-central1", "us-central1-a", "")
    to_east = [{"from": "us-central1", "to": "us-east1"}]
    assert locality.priority(here, here, []) == 0
    assert locality.priority(here, ("us-central1", "us-central1-a", "rack2"), []) == 1
    assert locality.priority(here, ("us-central1", "us-central1-b", ""), []) == 2
    assert locality.priority(here, ("us-west1", "us-west1-b", ""), []) == 3
    assert locality.priority(here, ("us-east1", "us-east1-b", ""), to_east) == 3
    assert locality.priority(here, ("us-west1", "us-west1-b", ""), to_east) == 4
