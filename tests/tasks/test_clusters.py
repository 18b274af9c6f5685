"""create/wait/delete/find cluster tasks against the sandbox, with the real google-cloud client."""

from __future__ import annotations

import pytest
from google.cloud import container_v1

from meshwright import clients
from meshwright.errors import Conflict, NotFound, OperationFailed, PermanentError, TransientError
from meshwright.sandbox.faults import FaultRule
from meshwright.sandbox.world import World
from meshwright.spec import Target
from tasks.clusters import (
    create_cluster,
    delete_cluster,
    find_expired_clusters,
    find_mesh_clusters,
    get_cluster,
    wait_cluster,
    wait_deleted,
)
from tasks.common import retry_if_transient
from tests.tasks.conftest import mesh


def test_create_is_vpc_native_labelled_tagged_and_waitable(sandbox: World) -> None:
    spec = mesh()
    created = create_cluster.fn(spec, "central", expires=1_900_000_000)
    assert created.operation
    assert not created.adopted
    access = wait_cluster.fn(spec, created)
    assert (access.status, access.pod_cidr) == ("RUNNING", "10.8.0.0/14")
    cluster = get_cluster(Target.SANDBOX, "demo-project", "us-central1-a", "central", step="test")
    assert cluster is not None
    assert dict(cluster.resource_labels) == {
        "team": "mesh",
        "meshwright-mesh": "m1",
        "meshwright-expires": "1900000000",
    }
    assert cluster.ip_allocation_policy.use_ip_aliases
    assert list(cluster.node_pools[0].config.tags) == ["meshwright-m1-node"]
    assert cluster.node_pools[0].initial_node_count == 4
    assert cluster.release_channel.channel == container_v1.ReleaseChannel.Channel.REGULAR
    assert cluster.workload_identity_config.workload_pool == "demo-project.svc.id.goog"
    assert "ca_certificate" not in repr(access)


def test_rerun_adopts_existing_cluster_even_while_provisioning(sandbox: World) -> None:
    spec = mesh()
    first = create_cluster.fn(spec, "west", expires=None)
    again = create_cluster.fn(spec, "west", expires=None)
    assert again.adopted
    assert again.operation is None
    assert wait_cluster.fn(spec, again).status == "RUNNING"
    assert [c.name for c in find_mesh_clusters.fn(Target.SANDBOX, "demo-project", "m1")] == ["west"]
    assert first.operation


def test_foreign_cluster_with_the_same_name_is_not_adopted(sandbox: World) -> None:
    cloud = clients.cloud(Target.SANDBOX)
    cloud.container.create_cluster(
        parent="projects/demo-project/locations/us-central1-a",
        cluster=container_v1.Cluster(name="central", initial_node_count=1),
    )
    with pytest.raises(
        Conflict, match=r"already exists in us-central1-a without the label meshwright-mesh=m1"
    ):
        create_cluster.fn(mesh(), "central", expires=None)


def test_failed_create_operation_is_permanent_and_names_the_cluster(sandbox: World) -> None:
    quota = "Insufficient regional quota to satisfy request: resource CPUS"
    sandbox.faults.replace([FaultRule(api="gke", operation="CREATE_CLUSTER", cluster="west", fail=quota)])
    spec = mesh()
    with pytest.raises(OperationFailed) as caught:
        wait_cluster.fn(spec, create_cluster.fn(spec, "west", expires=None))
    assert str(caught.value) == f"wait_cluster [west]: {quota}"
    assert not isinstance(caught.value, TransientError)


def test_cluster_left_in_error_is_deleted_and_recreated_on_rerun(sandbox: World) -> None:
    sandbox.faults.replace(
        [FaultRule(api="gke", operation="CREATE_CLUSTER", cluster="west", fail="boom", times=1)]
    )
    spec = mesh()
    with pytest.raises(OperationFailed):
        wait_cluster.fn(spec, create_cluster.fn(spec, "west", expires=None))
    with pytest.raises(TransientError, match="being deleted and will be created again"):
        create_cluster.fn(spec, "west", expires=None)
    wait_deleted.fn(Target.SANDBOX, "demo-project", "us-west1-b", "west")
    assert wait_cluster.fn(spec, create_cluster.fn(spec, "west", expires=None)).status == "RUNNING"


def test_transient_api_errors_are_classed_transient(sandbox: World) -> None:
    sandbox.faults.replace([FaultRule(api="gke", method="POST", status=503)])
    with pytest.raises(
        TransientError, match=r"create_cluster \[central\]: The service is currently unavailable"
    ):
        create_cluster.fn(mesh(), "central", expires=None)
    sandbox.faults.replace(
        [
            FaultRule(
                api="gke",
                method="POST",
                status=403,
                message="Permission denied on 'container.clusters.create'",
            )
        ]
    )
    with pytest.raises(PermanentError, match="Permission denied"):
        create_cluster.fn(mesh(), "central", expires=None)


def test_delete_treats_not_found_as_done_and_retries_a_busy_cluster(sandbox: World) -> None:
    assert delete_cluster.fn(Target.SANDBOX, "demo-project", "us-west1-b", "ghost") is None
    spec = mesh()
    create_cluster.fn(spec, "west", expires=None)
    with pytest.raises(TransientError, match="is currently creating cluster west"):
        delete_cluster.fn(Target.SANDBOX, "demo-project", "us-west1-b", "west")


def test_find_expired_clusters(sandbox: World) -> None:
    wait_cluster.fn(mesh(), create_cluster.fn(mesh(), "central", expires=1000))
    wait_cluster.fn(mesh(), create_cluster.fn(mesh(), "west", expires=5000))
    assert [c.name for c in find_expired_clusters.fn(Target.SANDBOX, "demo-project", now=2000)] == ["central"]


class _State:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def result(self) -> None:
        if self.error:
            raise self.error


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (TransientError("x"), True),
        (NotFound("x"), False),
        (OperationFailed("x"), False),
        (ValueError("x"), False),
        (None, False),
    ],
)
def test_retry_condition_looks_only_at_the_error_tree(error: Exception | None, retry: bool) -> None:
    assert retry_if_transient(None, None, _State(error)) is retry
