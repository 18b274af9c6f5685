"""The real google-cloud-container client against the GKE emulator: every verb and error path."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gx
from google.cloud import container_v1

from meshwright.sandbox.gcp import errors as msg
from meshwright.sandbox.world import World
from tests.support import PARENT, new_cluster, running_cluster, wait_done, wait_for

Status = container_v1.Cluster.Status
OpStatus = container_v1.Operation.Status


def test_create_moves_operation_and_cluster_through_their_states(
    gke: container_v1.ClusterManagerClient,
) -> None:
    op = gke.create_cluster(parent=PARENT, cluster=new_cluster("central"))
    assert op.operation_type == container_v1.Operation.Type.CREATE_CLUSTER
    assert op.status == OpStatus.PENDING
    assert gke.get_cluster(name=f"{PARENT}/clusters/central").status == Status.PROVISIONING
    seen = {wait_done(gke, PARENT, op.name).status}
    cluster = gke.get_cluster(name=f"{PARENT}/clusters/central")
    assert seen == {OpStatus.DONE}
    assert cluster.status == Status.RUNNING
    assert cluster.endpoint.startswith("127.0.0.1:")
    assert cluster.master_auth.cluster_ca_certificate
    assert cluster.cluster_ipv4_cidr.endswith("/14")
    assert cluster.services_ipv4_cidr == "34.118.224.0/20"
    assert cluster.resource_labels["meshwright-mesh"] == "m"
    assert cluster.node_pools[0].config.machine_type == "e2-standard-4"
    assert cluster.current_master_version.startswith("1.32")
    assert cluster.location == "us-central1-a"
    assert cluster.self_link.endswith("/clusters/central")


def test_operation_is_running_between_pending_and_done(gke: container_v1.ClusterManagerClient) -> None:
    op = gke.create_cluster(parent=PARENT, cluster=new_cluster("slow"))

    def status_after_pending() -> OpStatus | None:
        status = gke.get_operation(name=f"{PARENT}/operations/{op.name}").status
        return None if status == OpStatus.PENDING else status

    assert wait_for(status_after_pending, what="the operation leaves PENDING", timeout=10) == OpStatus.RUNNING


def test_duplicate_create_is_conflict(gke: container_v1.ClusterManagerClient) -> None:
    gke.create_cluster(parent=PARENT, cluster=new_cluster("dup"))
    with pytest.raises(gx.Conflict, match="Already exists"):
        gke.create_cluster(parent=PARENT, cluster=new_cluster("dup"))


def test_unknown_cluster_and_operation_are_not_found(gke: container_v1.ClusterManagerClient) -> None:
    with pytest.raises(
        gx.NotFound, match=r"Not found: projects/demo-project/locations/us-central1-a/clusters/ghost\."
    ):
        gke.get_cluster(name=f"{PARENT}/clusters/ghost")
    with pytest.raises(gx.NotFound):
        gke.get_operation(name=f"{PARENT}/operations/operation-1-x")
    with pytest.raises(gx.NotFound):
        gke.delete_cluster(name=f"{PARENT}/clusters/ghost")


def test_list_across_locations_with_dash(gke: container_v1.ClusterManagerClient) -> None:
    gke.create_cluster(parent=PARENT, cluster=new_cluster("a"))
    gke.create_cluster(parent="projects/demo-project/locations/us-west1", cluster=new_cluster("b"))
    gke.create_cluster(parent="projects/other-project/locations/us-west1", cluster=new_cluster("c"))
    names = [c.name for c in gke.list_clusters(parent="projects/demo-project/locations/-").clusters]
    assert sorted(names) == ["a", "b"]
    assert [c.name for c in gke.list_clusters(parent=PARENT).clusters] == ["a"]


def test_delete_goes_stopping_then_not_found(gke: container_v1.ClusterManagerClient) -> None:
    running_cluster(gke, "doomed")
    op = gke.delete_cluster(name=f"{PARENT}/clusters/doomed")
    assert op.operation_type == container_v1.Operation.Type.DELETE_CLUSTER
    assert gke.get_cluster(name=f"{PARENT}/clusters/doomed").status == Status.STOPPING
    wait_done(gke, PARENT, op.name)
    with pytest.raises(gx.NotFound):
        gke.get_cluster(name=f"{PARENT}/clusters/doomed")


def test_delete_during_create_is_failed_precondition(gke: container_v1.ClusterManagerClient) -> None:
    gke.create_cluster(parent=PARENT, cluster=new_cluster("busy"))
    with pytest.raises(gx.BadRequest, match=r"is currently creating cluster busy\. Please wait"):
        gke.delete_cluster(name=f"{PARENT}/clusters/busy")


def test_overlapping_explicit_range_fails_the_operation(gke: container_v1.ClusterManagerClient) -> None:
    policy = container_v1.IPAllocationPolicy(use_ip_aliases=True, cluster_ipv4_cidr_block="10.8.0.0/14")
    op1 = gke.create_cluster(parent=PARENT, cluster=new_cluster("one", ip_allocation_policy=policy))
    wait_done(gke, PARENT, op1.name)
    overlapping = container_v1.IPAllocationPolicy(use_ip_aliases=True, cluster_ipv4_cidr_block="10.10.0.0/16")
    op2 = gke.create_cluster(parent=PARENT, cluster=new_cluster("two", ip_allocation_policy=overlapping))
    done = wait_done(gke, PARENT, op2.name)
    assert "conflicts with existing subnetwork range '10.8.0.0/14'" in done.error.message
    assert done.status_message == done.error.message
    cluster = gke.get_cluster(name=f"{PARENT}/clusters/two")
    assert cluster.status == Status.ERROR


def test_auto_allocated_ranges_never_overlap(gke: container_v1.ClusterManagerClient) -> None:
    ranges = [running_cluster(gke, f"c{i}").cluster_ipv4_cidr for i in range(3)]
    import ipaddress

    nets = [ipaddress.ip_network(r) for r in ranges]
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])


def test_invalid_requests_are_rejected(gke: container_v1.ClusterManagerClient) -> None:
    with pytest.raises(gx.BadRequest, match='Network "nope" does not exist'):
        gke.create_cluster(parent=PARENT, cluster=new_cluster("x", network="nope"))
    with pytest.raises(gx.BadRequest, match=r"Cluster\.name must be set"):
        gke.create_cluster(parent=PARENT, cluster=container_v1.Cluster())
    with pytest.raises(gx.BadRequest, match=r"initial_node_count and node_pools"):
        gke.create_cluster(parent=PARENT, cluster=new_cluster("y", initial_node_count=3))


def test_error_envelope_is_googles(world: World) -> None:
    import json
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{world.base_url()}/v1/{PARENT}/clusters/none")
    body = json.loads(caught.value.read())
    assert body == {
        "error": {
            "code": 404,
            "message": msg.CLUSTER_NOT_FOUND.format(
                project="demo-project", location="us-central1-a", name="none"
            ),
            "status": "NOT_FOUND",
        }
    }
