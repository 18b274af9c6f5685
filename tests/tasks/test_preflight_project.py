"""Preflight against a project as it comes: a custom mode network, the nodes' service account,
regional quota, APIs not enabled (task bodies with `task.fn()` against the in-process sandbox)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import container_v1

from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.errors import PermanentError, QuotaExceeded, ServiceDisabled
from meshwright.sandbox.gcp import catalog
from meshwright.sandbox.world import World
from meshwright.spec import Target
from tasks.clusters import cluster_request, create_cluster, find_mesh_clusters
from tasks.network import GKE_MADE, check_network, network_line
from tasks.project import check_quotas, check_service_accounts
from tests.support import FAST, PROJECT, mesh, register


def post(world: World, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(f"{world.base_url()}{path}", data=data, method="POST")
    with urllib.request.urlopen(request) as answer:
        result: dict[str, object] = json.loads(answer.read())
    return result


def custom_network(world: World) -> None:
    post(
        world,
        f"/compute/v1/projects/{PROJECT}/global/networks",
        {"name": "corp", "autoCreateSubnetworks": False},
    )


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[MeshwrightTarget]:
    """A sandbox whose project has 24 CPUS in us-central1 (a new project's kind of quota)."""
    world = World(tmp_path / "sandbox", latency=FAST, quotas={"us-central1": {"CPUS": 24.0}}).start()
    register(world)
    clients.reset_cache()
    yield MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(world.layout.root))
    world.stop()
    clients.reset_cache()


def test_on_a_custom_mode_network_preflight_says_gke_makes_a_subnetwork_per_cluster(
    sandbox: World, target: MeshwrightTarget
) -> None:
    custom_network(sandbox)
    spec = mesh(network="corp")
    check = check_network.fn(spec, target=target)
    assert (check.mode, check.subnets) == ("custom", {"central": GKE_MADE, "west": GKE_MADE})
    assert (
        network_line(check) == "network corp is in custom mode: GKE will make a subnetwork for central, west"
    )
    request = cluster_request(spec, spec.clusters[0], expires=None, custom_network=True)
    assert request.ip_allocation_policy.create_subnetwork
    assert not cluster_request(spec, spec.clusters[0], expires=None).ip_allocation_policy.create_subnetwork
    named = mesh(
        network="corp", clusters=[{"name": "central", "location": "us-central1-a", "subnetwork": "nope"}]
    )
    with pytest.raises(
        PermanentError, match="subnetwork 'nope' of network 'corp' does not exist in us-central1"
    ):
        check_network.fn(named, target=target)


def test_create_cluster_on_a_custom_mode_network_asks_gke_for_a_subnetwork(
    sandbox: World, target: MeshwrightTarget
) -> None:
    custom_network(sandbox)
    spec = mesh(network="corp", clusters=[{"name": "central", "location": "us-central1-a"}])
    create_cluster.fn(spec, "central", target=target, expires=None)
    got = clients.cloud(target).container.get_cluster(
        name=f"projects/{PROJECT}/locations/us-central1-a/clusters/central"
    )
    assert got.subnetwork.startswith("gke-central-subnet-")
    assert got.ip_allocation_policy.create_subnetwork


def test_quota_short_in_a_region_fails_naming_region_metric_asked_and_available(
    limited: MeshwrightTarget,
) -> None:
    spec = mesh(
        clusters=[
            {"name": "central", "location": "us-central1-a", "nodes": 4},  # 16 vCPUs
            {"name": "west", "location": "us-central1-b", "nodes": 4, "primary": "central"},  # 16 more
            {"name": "east", "location": "us-east1-b", "primary": "central"},
        ]
    )
    with pytest.raises(QuotaExceeded) as short:
        check_quotas.fn(spec, target=limited, existing=[])
    assert "us-central1 CPUS: the spec asks 32, 24 available (limit 24, in use 0)" in str(short.value)
    assert "us-east1" not in str(short.value)
    assert "quotas?usage=USED&project=demo-project" in str(short.value)
    asked = check_quotas.fn(spec, target=limited, existing=["central"])  # adopted: already in the usage
    assert asked["us-central1"]["CPUS"] == 16


def test_a_regional_cluster_asks_for_its_nodes_in_three_zones(limited: MeshwrightTarget) -> None:
    spec = mesh(
        clusters=[{"name": "central", "location": "us-central1", "nodes": 1, "machine_type": "e2-standard-8"}]
    )
    twice = mesh(
        clusters=[{"name": "central", "location": "us-central1", "nodes": 2, "machine_type": "e2-standard-8"}]
    )
    with pytest.raises(QuotaExceeded, match=r"us-central1 CPUS: the spec asks 48, 24 available"):
        check_quotas.fn(twice, target=limited, existing=[])  # 2 per zone x 3 zones x 8 vCPUs
    assert check_quotas.fn(spec, target=limited, existing=[])["us-central1"] == {
        "CPUS": 24,
        "IN_USE_ADDRESSES": 3,
        "SSD_TOTAL_GB": 300,
    }
    odd = mesh(clusters=[{"name": "central", "location": "us-central1-a", "machine_type": "e2-weird-3"}])
    with pytest.raises(PermanentError, match="machine type 'e2-weird-3' does not exist in us-central1-a"):
        check_quotas.fn(odd, target=limited, existing=[])


def test_the_nodes_service_account_must_exist(sandbox: World, target: MeshwrightTarget) -> None:
    assert check_service_accounts.fn(mesh(), target=target) == [catalog.default_service_account(PROJECT)]
    named = f"mesh-nodes@{PROJECT}.iam.gserviceaccount.com"
    spec = mesh(clusters=[{"name": "central", "location": "us-central1-a", "service_account": named}])
    with pytest.raises(PermanentError, match=f"the nodes' service account {named} does not exist"):
        check_service_accounts.fn(spec, target=target)
    post(sandbox, f"/v1/projects/{PROJECT}/serviceAccounts", {"accountId": "mesh-nodes"})
    assert check_service_accounts.fn(spec, target=target) == [named]
    request = cluster_request(spec, spec.clusters[0], expires=None)
    assert request.node_pools[0].config.service_account == named


def test_an_api_not_enabled_is_named_with_the_line_that_enables_it(
    sandbox: World, target: MeshwrightTarget
) -> None:
    number = catalog.project_number(PROJECT)
    post(sandbox, f"/v1/projects/{PROJECT}/services/container.googleapis.com:disable")
    with pytest.raises(ServiceDisabled) as gke:
        find_mesh_clusters.fn(target, PROJECT, "m1")
    assert gke.value.message == (
        f"Kubernetes Engine API (container.googleapis.com) is not enabled in project {number}: run "
        f"`gcloud services enable container.googleapis.com --project {number}`, wait a minute for it to "
        "take effect, and run again"
    )
    post(sandbox, f"/v1/projects/{PROJECT}/services/compute.googleapis.com:disable")
    with pytest.raises(ServiceDisabled, match=r"`gcloud services enable compute\.googleapis\.com --project"):
        check_network.fn(mesh(), target=target)
    post(sandbox, f"/v1/projects/{PROJECT}/services/iam.googleapis.com:disable")
    post(sandbox, f"/v1/projects/{PROJECT}/services/compute.googleapis.com:enable")
    assert check_service_accounts.fn(mesh(), target=target) == []  # not checked; GKE will say
    assert isinstance(clients.cloud(target).container, container_v1.ClusterManagerClient)
