"""deploy_bookinfo against the sandbox, after the Istio tasks: what lands in each cluster, and a rerun."""

from __future__ import annotations

import kubernetes.client
import pytest
from prefect.logging import disable_run_logger

from meshwright.clients import MeshwrightTarget
from meshwright.models import BookinfoResult, ChartRef, ClusterAccess
from meshwright.spec import MeshSpec
from tasks.bookinfo import deploy_bookinfo
from tasks.istio import expose_on_gateway, gateway_address, install_release, prepare_namespace
from tasks.trust import ensure_cacerts, ensure_root_ca
from tests.dataplane.meshes import CENTRAL, WEST, mesh_spec
from tests.istio.support import api, bring_up


def spec() -> MeshSpec:
    return mesh_spec(
        "bk",
        [CENTRAL, WEST],
        {
            "central": ["productpage-v1", "details-v1", "reviews-v1", "reviews-v2", "ratings-v1"],
            "west": ["reviews-v3"],
        },
    )


@pytest.fixture(scope="module")
def deployed(
    shared_target: MeshwrightTarget, bundled: list[ChartRef]
) -> tuple[MeshSpec, dict[str, ClusterAccess], dict[str, BookinfoResult]]:
    mesh, target = spec(), shared_target
    with disable_run_logger():
        clusters = bring_up(mesh, target)
        root = ensure_root_ca.fn(mesh)
        for access in clusters.values():
            prepare_namespace.fn(mesh, access, target=target)
            ensure_cacerts.fn(mesh, access, root, target=target)
        central, west = clusters["central"], clusters["west"]
        for release in ("istio-base", "istiod", "istio-eastwestgateway"):
            install_release.fn(mesh, central, release, bundled, target=target)
        address = gateway_address.fn(central, target=target)
        expose_on_gateway.fn(mesh, central, target=target)
        install_release.fn(mesh, west, "istio-base", bundled, target=target)
        install_release.fn(mesh, west, "istiod", bundled, target=target, remote_pilot_address=address)
        results = {n: deploy_bookinfo.fn(mesh, a, bundled, target=target) for n, a in clusters.items()}
    return mesh, clusters, results


def test_services_everywhere_deployments_where_placed(
    deployed: tuple[MeshSpec, dict[str, ClusterAccess], dict[str, BookinfoResult]],
    shared_target: MeshwrightTarget,
) -> None:
    _, clusters, _ = deployed
    for name, expected in (("central", 5), ("west", 1)):
        client = api(shared_target, clusters[name])
        services = kubernetes.client.CoreV1Api(client).list_namespaced_service("bookinfo").items
        assert sorted(str(s.metadata.name) for s in services) == [
            "details",
            "productpage",
            "ratings",
            "reviews",
        ]
        deployments = kubernetes.client.AppsV1Api(client).list_namespaced_deployment("bookinfo").items
        assert len(deployments) == expected
        assert all(d.status.ready_replicas == 1 for d in deployments)


def test_ingress_gateway_and_its_config_only_in_productpages_cluster(
    deployed: tuple[MeshSpec, dict[str, ClusterAccess], dict[str, BookinfoResult]],
    shared_target: MeshwrightTarget,
) -> None:
    _, clusters, results = deployed
    assert results["central"].ingress == "installed"
    assert results["west"].ingress is None
    assert "Gateway/bookinfo-gateway" in results["central"].applied
    assert "VirtualService/bookinfo" in results["central"].applied
    assert "Gateway/bookinfo-gateway" not in results["west"].applied
    svc = kubernetes.client.CoreV1Api(api(shared_target, clusters["central"])).read_namespaced_service(
        "istio-ingressgateway", "istio-system"
    )
    assert svc.spec.type == "LoadBalancer"
    assert svc.spec.selector == {"app": "istio-ingressgateway", "istio": "ingressgateway"}


def test_rerun_changes_nothing(
    deployed: tuple[MeshSpec, dict[str, ClusterAccess], dict[str, BookinfoResult]],
    shared_target: MeshwrightTarget,
    bundled: list[ChartRef],
) -> None:
    mesh, clusters, results = deployed
    with disable_run_logger():
        again = deploy_bookinfo.fn(mesh, clusters["central"], bundled, target=shared_target)
    assert again.ingress == "unchanged"
    assert again.applied == results["central"].applied
