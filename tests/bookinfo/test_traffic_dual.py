"""End to end on the sandbox, two primaries on two networks: traffic crosses through the east-west
gateways, and stops without the cross-network Gateway. (Its own module: one sandbox at a time owns
the loopback gateway addresses.)"""

from __future__ import annotations

from collections.abc import Iterator

import kubernetes.client
import pytest

from meshwright import clients, naming
from tests.bookinfo.support import Built, running_mesh, traffic
from tests.dataplane.meshes import multi_network


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    yield from running_mesh(tmp_path_factory.mktemp("dual"), multi_network("bkd"))


def test_multi_network_needs_the_cross_network_gateway(built: Built) -> None:
    assert traffic(built).ok
    _, target, _, clusters = built
    custom = kubernetes.client.CustomObjectsApi(
        clients.cloud(target).kube(clusters["beta"].endpoint, clusters["beta"].ca_certificate)
    )
    custom.delete_namespaced_custom_object(
        "networking.istio.io", "v1", naming.ISTIO_NAMESPACE, "gateways", "cross-network-gateway"
    )
    report = traffic(built)
    assert any(p.startswith("reviews-v2 on beta never answered") for p in report.problems)
    assert any("beta: no Gateway passes *.local through on 15443" in p for p in report.problems)
