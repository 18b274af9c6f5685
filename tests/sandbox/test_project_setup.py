"""A real project's set-up, as the sandbox's GKE, Compute, IAM and Service Usage answer it: custom mode
networks and their subnetworks, the nodes' service account, regional quotas with usage, APIs that
are not enabled. Driven by Google's discovery client and the google-cloud clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httplib2
import pytest
from google.api_core import exceptions as gx
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, container_v1
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from meshwright.sandbox.faults import Faults
from meshwright.sandbox.gcp import catalog
from meshwright.sandbox.gcp import errors as e
from meshwright.sandbox.settings import parse_quotas
from meshwright.sandbox.world import World
from tests.sandbox.raw import call
from tests.sandbox.schema import violations
from tests.support import FAST, PROJECT, new_cluster, wait_done

REGION = "us-central1"


def compute_api(world: World) -> Any:
    return discovery.build(
        "compute",
        "v1",
        static_discovery=True,
        http=httplib2.Http(),
        client_options={"api_endpoint": world.base_url() + "/compute/v1/"},
    )


def gke_api(world: World) -> Any:
    return discovery.build(
        "container",
        "v1",
        static_discovery=True,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": world.base_url() + "/"},
    )


def options(world: World) -> dict[str, Any]:
    return {
        "credentials": AnonymousCredentials(),
        "transport": "rest",
        "client_options": ClientOptions(api_endpoint=world.base_url()),
    }


def make_corp(world: World) -> None:
    """A custom mode network `corp` with one subnet in us-central1, made through the discovery client."""
    api = compute_api(world)
    api.networks().insert(project=PROJECT, body={"name": "corp", "autoCreateSubnetworks": False}).execute()
    subnet = {
        "name": "corp-central",
        "network": f"projects/{PROJECT}/global/networks/corp",
        "ipCidrRange": "10.10.0.0/20",
        "secondaryIpRanges": [{"rangeName": "spare", "ipCidrRange": "10.20.0.0/16"}],
    }
    api.subnetworks().insert(project=PROJECT, region=REGION, body=subnet).execute()


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[World]:
    quotas = tmp_path / "quotas.yaml"
    quotas.write_text("us-central1:\n  CPUS: 24\n")
    w = World(tmp_path / "state", latency=FAST, faults=Faults(), quotas=parse_quotas(quotas)).start()
    yield w
    w.stop()


def test_a_bare_create_on_a_custom_mode_network_is_refused_as_gke_refuses_it(world: World) -> None:
    make_corp(world)
    network = compute_api(world).networks().get(project=PROJECT, network="corp").execute()
    assert network["autoCreateSubnetworks"] is False
    assert network["subnetworks"][0].endswith(f"/regions/{REGION}/subnetworks/corp-central")
    clusters = gke_api(world).projects().locations().clusters()
    bare = {"cluster": {"name": "c1", "network": "corp", "initialNodeCount": 1}}
    with pytest.raises(HttpError) as refused:
        clusters.create(parent=f"projects/{PROJECT}/locations/{REGION}-a", body=bare).execute()
    assert refused.value.resp.status == 400
    assert refused.value.reason == e.MANUAL_SUBNET_MODE.format(network="corp")
    elsewhere = {"cluster": {**bare["cluster"], "subnetwork": "corp-central"}}
    with pytest.raises(HttpError, match="is not valid for Network"):  # its subnet is in us-central1
        clusters.create(parent=f"projects/{PROJECT}/locations/us-west1-b", body=elsewhere).execute()


def test_a_cluster_in_a_named_subnetwork_adds_its_pod_range_there_and_takes_it_away(world: World) -> None:
    make_corp(world)
    gke = container_v1.ClusterManagerClient(**options(world))
    subnets = compute_v1.SubnetworksClient(**options(world))
    parent = f"projects/{PROJECT}/locations/{REGION}-a"
    op = gke.create_cluster(
        parent=parent, cluster=new_cluster("c1", network="corp", subnetwork="corp-central")
    )
    wait_done(gke, parent, op.name)
    cluster = gke.get_cluster(name=f"{parent}/clusters/c1")
    subnet = subnets.get(project=PROJECT, region=REGION, subnetwork="corp-central")
    ranges = {r.range_name: r.ip_cidr_range for r in subnet.secondary_ip_ranges}
    assert ranges[cluster.ip_allocation_policy.cluster_secondary_range_name] == cluster.cluster_ipv4_cidr
    wait_done(gke, parent, gke.delete_cluster(name=f"{parent}/clusters/c1").name)
    subnet = subnets.get(project=PROJECT, region=REGION, subnetwork="corp-central")
    assert [r.range_name for r in subnet.secondary_ip_ranges] == ["spare"]


def test_create_subnetwork_makes_one_for_the_cluster_and_its_delete_removes_it(world: World) -> None:
    make_corp(world)
    gke = container_v1.ClusterManagerClient(**options(world))
    parent = f"projects/{PROJECT}/locations/{REGION}"
    policy = container_v1.IPAllocationPolicy(use_ip_aliases=True, create_subnetwork=True)
    cluster = new_cluster("c2", network="corp", ip_allocation_policy=policy)
    wait_done(gke, parent, gke.create_cluster(parent=parent, cluster=cluster).name)
    got = gke.get_cluster(name=f"{parent}/clusters/c2")
    assert got.subnetwork.startswith("gke-c2-subnet-")
    assert got.current_node_count == 6  # 2 per zone in three zones of the region
    listed = compute_api(world).subnetworks().list(project=PROJECT, region=REGION).execute()["items"]
    assert {s["name"] for s in listed} == {"corp-central", got.subnetwork, "default"}
    wait_done(gke, parent, gke.delete_cluster(name=f"{parent}/clusters/c2").name)
    listed = compute_api(world).subnetworks().list(project=PROJECT, region=REGION).execute()["items"]
    assert {s["name"] for s in listed} == {"corp-central", "default"}


def test_an_auto_mode_subnet_holds_thirty_secondary_ranges_at_most(world: World) -> None:
    make_corp(world)
    full = {
        "name": "full",
        "network": f"projects/{PROJECT}/global/networks/corp",
        "ipCidrRange": "10.30.0.0/20",
        "secondaryIpRanges": [
            {"rangeName": f"r{i}", "ipCidrRange": f"10.{40 + i}.0.0/16"} for i in range(30)
        ],
    }
    compute_api(world).subnetworks().insert(project=PROJECT, region=REGION, body=full).execute()
    gke = container_v1.ClusterManagerClient(**options(world))
    with pytest.raises(gx.BadRequest, match=r"exceed max secondary ranges per subnetwork \(30\)"):
        gke.create_cluster(
            parent=f"projects/{PROJECT}/locations/{REGION}-a",
            cluster=new_cluster("c3", network="corp", subnetwork="full"),
        )
    default = (
        compute_api(world).subnetworks().get(project=PROJECT, region=REGION, subnetwork="default").execute()
    )
    assert default["ipCidrRange"] == "10.128.0.0/20"  # Google's auto mode range for us-central1


def test_overlapping_subnetworks_are_refused_as_compute_refuses_them(world: World) -> None:
    make_corp(world)
    clash = {"name": "clash", "network": "global/networks/corp", "ipCidrRange": "10.20.4.0/22"}
    with pytest.raises(HttpError) as refused:
        compute_api(world).subnetworks().insert(project=PROJECT, region="us-west1", body=clash).execute()
    assert refused.value.resp.status == 400
    assert "conflicts with existing subnetwork 'corp-central' in region 'us-central1'" in str(refused.value)
    with pytest.raises(HttpError, match="was not found"):
        compute_api(world).subnetworks().get(project=PROJECT, region=REGION, subnetwork="clash").execute()


def test_regions_report_quota_with_usage_from_what_runs_and_a_create_past_it_is_403(limited: World) -> None:
    regions = compute_v1.RegionsClient(**options(limited))
    gke = container_v1.ClusterManagerClient(**options(limited))
    zonal = f"projects/{PROJECT}/locations/{REGION}-a"
    wait_done(gke, zonal, gke.create_cluster(parent=zonal, cluster=new_cluster("small")).name)  # 2 x 4 vCPUs
    quotas = {q.metric: (q.limit, q.usage) for q in regions.get(project=PROJECT, region=REGION).quotas}
    assert quotas["CPUS"] == (24.0, 8.0)
    assert quotas["IN_USE_ADDRESSES"][1] == 2.0
    assert quotas["SSD_TOTAL_GB"][1] == 200.0
    with pytest.raises(gx.Forbidden) as refused:  # 2 per zone x 3 zones x 4 vCPUs = 24 > 16
        gke.create_cluster(parent=f"projects/{PROJECT}/locations/{REGION}", cluster=new_cluster("big"))
    assert refused.value.reason == "INSUFFICIENT_QUOTA_REGIONAL"
    assert e.QUOTA_REGIONAL.format(
        metric="CPUS", asked=24, short=8, limit=24, available=16, project=PROJECT
    ) in str(refused.value)
    assert gke.list_clusters(parent=f"projects/{PROJECT}/locations/-").clusters[0].name == "small"
    elsewhere = {q.metric: q.limit for q in regions.get(project=PROJECT, region="us-west1").quotas}
    assert elsewhere["CPUS"] == catalog.DEFAULT_QUOTAS["CPUS"]


def test_machine_types_and_the_default_service_account_are_what_compute_says(world: World) -> None:
    machine = compute_v1.MachineTypesClient(**options(world)).get(
        project=PROJECT, zone=f"{REGION}-a", machine_type="e2-standard-8"
    )
    assert (machine.guest_cpus, machine.memory_mb) == (8, 32768)
    with pytest.raises(gx.NotFound, match="machineTypes/e2-weird-3' was not found"):
        compute_v1.MachineTypesClient(**options(world)).get(
            project=PROJECT, zone=f"{REGION}-a", machine_type="e2-weird-3"
        )
    project = compute_v1.ProjectsClient(**options(world)).get(project=PROJECT)
    assert project.default_service_account == catalog.default_service_account(PROJECT)
    assert project.default_service_account.endswith("-compute@developer.gserviceaccount.com")


def test_nodes_need_a_service_account_that_exists(world: World) -> None:
    gke = container_v1.ClusterManagerClient(**options(world))
    parent = f"projects/{PROJECT}/locations/{REGION}-a"
    email = f"mesh-nodes@{PROJECT}.iam.gserviceaccount.com"
    cluster = new_cluster("c4")
    cluster.node_pools[0].config.service_account = email
    with pytest.raises(gx.BadRequest, match=f'Service account "{email}" does not exist.'):
        gke.create_cluster(parent=parent, cluster=cluster)
    assert call(world, "GET", f"/v1/projects/{PROJECT}/serviceAccounts/{email}") == (
        404,
        {"error": {"code": 404, "message": e.ACCOUNT_UNKNOWN, "status": "NOT_FOUND"}},
    )
    status, made = call(world, "POST", f"/v1/projects/{PROJECT}/serviceAccounts", {"accountId": "mesh-nodes"})
    assert (status, made["email"]) == (200, email)
    assert violations("iam", "ServiceAccount", made) == []
    wait_done(gke, parent, gke.create_cluster(parent=parent, cluster=cluster).name)
    default = catalog.default_service_account(PROJECT)
    assert call(world, "DELETE", f"/v1/projects/-/serviceAccounts/{default}")[0] == 200
    with pytest.raises(gx.BadRequest, match=f'Service account "{default}" does not exist.'):
        gke.create_cluster(parent=parent, cluster=new_cluster("c5"))


def test_an_api_that_is_not_enabled_answers_403_service_disabled(world: World) -> None:
    base = f"/v1/projects/{PROJECT}/services"
    assert call(world, "POST", f"{base}/container.googleapis.com:disable")[1]["done"] is True
    assert call(world, "GET", f"{base}/container.googleapis.com")[1]["state"] == "DISABLED"
    gke = container_v1.ClusterManagerClient(**options(world))
    with pytest.raises(gx.Forbidden, match="Kubernetes Engine API has not been used in project") as refused:
        gke.list_clusters(parent=f"projects/{PROJECT}/locations/-")
    assert refused.value.reason == "SERVICE_DISABLED"
    assert refused.value.metadata["service"] == "container.googleapis.com"
    call(world, "POST", f"{base}/compute.googleapis.com:disable")
    with pytest.raises(gx.Forbidden, match="Compute Engine API has not been used") as compute_refused:
        compute_v1.NetworksClient(**options(world)).get(project=PROJECT, network="default")
    assert [err["reason"] for err in compute_refused.value.errors] == ["accessNotConfigured"]
    assert call(world, "POST", f"{base}/container.googleapis.com:enable")[1]["response"]["service"][
        "state"
    ] == ("ENABLED")
    assert list(gke.list_clusters(parent=f"projects/{PROJECT}/locations/-").clusters) == []
    assert call(world, "GET", f"{base}/nope.example.com")[0] == 403


def test_new_answers_match_the_discovery_documents(world: World) -> None:
    make_corp(world)
    gce = f"/compute/v1/projects/{PROJECT}"
    samples = [
        ("Project", call(world, "GET", gce)[1]),
        ("Region", call(world, "GET", f"{gce}/regions/{REGION}")[1]),
        ("Subnetwork", call(world, "GET", f"{gce}/regions/{REGION}/subnetworks/corp-central")[1]),
        ("SubnetworkList", call(world, "GET", f"{gce}/regions/{REGION}/subnetworks")[1]),
        ("MachineType", call(world, "GET", f"{gce}/zones/{REGION}-a/machineTypes/e2-standard-4")[1]),
        ("Network", call(world, "GET", f"{gce}/global/networks/corp")[1]),
    ]
    for schema, body in samples:
        assert violations("compute", schema, body) == [], schema
    service = call(world, "GET", f"/v1/projects/{PROJECT}/services/compute.googleapis.com")[1]
    assert violations("serviceusage", "GoogleApiServiceusageV1Service", service) == []


def test_quota_files_name_what_is_wrong(tmp_path: Path) -> None:
    bad = tmp_path / "q.yaml"
    bad.write_text("us-central1: {cpus: 3}\n")
    with pytest.raises(ValueError, match="'cpus' is not a quota metric"):
        parse_quotas(bad)
    bad.write_text("us-central1: {CPUS: -1}\n")
    with pytest.raises(ValueError, match="CPUS must be a number of at least 0"):
        parse_quotas(bad)
    assert parse_quotas(None) == {}


def test_an_explicit_pod_range_over_a_subnet_fails_the_create_operation(world: World) -> None:
    make_corp(world)
    gke = container_v1.ClusterManagerClient(**options(world))
    parent = f"projects/{PROJECT}/locations/{REGION}-a"
    policy = container_v1.IPAllocationPolicy(use_ip_aliases=True, cluster_ipv4_cidr_block="10.10.0.0/16")
    cluster = new_cluster("c6", network="corp", subnetwork="corp-central", ip_allocation_policy=policy)
    done = wait_done(gke, parent, gke.create_cluster(parent=parent, cluster=cluster).name)
    assert done.error.message == (
        "Google Compute Engine: Invalid IPCidrRange: 10.10.0.0/16 conflicts with existing subnetwork "
        "'corp-central' in region 'us-central1'."
    )
