"""create/wait/delete/find cluster tasks against the sandbox, with the real google-cloud client."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from google.cloud import container_v1

from meshwright import clients, naming
from meshwright.clients import MeshwrightTarget
from meshwright.errors import Conflict, NotFound, OperationFailed, PermanentError, TransientError
from meshwright.inflight import InFlight
from meshwright.sandbox.faults import FaultRule
from meshwright.sandbox.world import World
from meshwright.settings import settings
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
from tests.support import mesh


def creates_cluster(target: MeshwrightTarget, operation: str | None, name: str) -> bool:
    """`operation` is the full name of the GKE operation that created cluster `name`."""
    assert operation is not None
    op = clients.cloud(target).container.get_operation(name=operation)
    return (
        operation.startswith("projects/demo-project/locations/")
        and op.operation_type == container_v1.Operation.Type.CREATE_CLUSTER
        and op.target_link.endswith(f"/clusters/{name}")
    )


def test_create_is_vpc_native_labelled_tagged_and_waitable(sandbox: World, target: MeshwrightTarget) -> None:
    spec = mesh()
    created = create_cluster.fn(spec, "central", target=target, expires=1_900_000_000)
    assert created.adopted is False
    assert creates_cluster(target, created.operation, "central")
    access = wait_cluster.fn(spec, created, target=target)
    assert (access.status, access.pod_cidr) == ("RUNNING", "10.8.0.0/14")
    cluster = get_cluster(target, "demo-project", "us-central1-a", "central", step="test")
    assert cluster is not None
    assert cluster.name == "central"
    assert dict(cluster.resource_labels) == {
        "team": "mesh",
        "meshwright-mesh": "m1",
        "meshwright-expires": "1900000000",
        "meshwright-ttl": "7200",  # what the expiry was made from: a rerun with the same ttl keeps it
    }
    assert cluster.ip_allocation_policy.use_ip_aliases is True
    assert list(cluster.node_pools[0].config.tags) == ["meshwright-m1-node"]
    assert cluster.node_pools[0].initial_node_count == 4
    assert cluster.release_channel.channel == container_v1.ReleaseChannel.Channel.REGULAR
    assert cluster.workload_identity_config.workload_pool == "demo-project.svc.id.goog"
    assert "ca_certificate" not in repr(access)


def test_rerun_adopts_existing_cluster_even_while_provisioning(
    sandbox: World, target: MeshwrightTarget
) -> None:
    spec = mesh()
    first = create_cluster.fn(spec, "west", target=target, expires=None)
    again = create_cluster.fn(spec, "west", target=target, expires=None)
    assert again.adopted
    assert again.operation is None
    assert wait_cluster.fn(spec, again, target=target).status == "RUNNING"
    assert [c.name for c in find_mesh_clusters.fn(target, "demo-project", "m1")] == ["west"]
    assert creates_cluster(target, first.operation, "west")


def test_foreign_cluster_with_the_same_name_is_not_adopted(sandbox: World, target: MeshwrightTarget) -> None:
    cloud = clients.cloud(target)
    cloud.container.create_cluster(
        parent="projects/demo-project/locations/us-central1-a",
        cluster=container_v1.Cluster(name="central", initial_node_count=1),
    )
    with pytest.raises(
        Conflict, match=r"already exists in us-central1-a without the label meshwright-mesh=m1"
    ):
        create_cluster.fn(mesh(), "central", target=target, expires=None)


def test_failed_create_operation_is_permanent_and_names_the_cluster(
    sandbox: World, target: MeshwrightTarget
) -> None:
    quota = "Insufficient regional quota to satisfy request: resource CPUS"
    sandbox.faults.replace([FaultRule(api="gke", operation="CREATE_CLUSTER", cluster="west", fail=quota)])
    spec = mesh()
    with pytest.raises(OperationFailed) as caught:
        wait_cluster.fn(spec, create_cluster.fn(spec, "west", target=target, expires=None), target=target)
    assert str(caught.value) == f"wait_cluster [west]: {quota}"
    assert not isinstance(caught.value, TransientError)


def test_cluster_left_in_error_is_deleted_and_recreated_on_rerun(
    sandbox: World, target: MeshwrightTarget
) -> None:
    sandbox.faults.replace(
        [FaultRule(api="gke", operation="CREATE_CLUSTER", cluster="west", fail="boom", times=1)]
    )
    spec = mesh()
    with pytest.raises(OperationFailed):
        wait_cluster.fn(spec, create_cluster.fn(spec, "west", target=target, expires=None), target=target)
    with pytest.raises(TransientError, match="being deleted and will be created again"):
        create_cluster.fn(spec, "west", target=target, expires=None)
    wait_deleted.fn(target, "demo-project", "us-west1-b", "west")
    assert (
        wait_cluster.fn(
            spec, create_cluster.fn(spec, "west", target=target, expires=None), target=target
        ).status
        == "RUNNING"
    )


def test_transient_api_errors_are_classed_transient(sandbox: World, target: MeshwrightTarget) -> None:
    sandbox.faults.replace([FaultRule(api="gke", method="POST", status=503)])
    with pytest.raises(
        TransientError, match=r"create_cluster \[central\]: The service is currently unavailable"
    ):
        create_cluster.fn(mesh(), "central", target=target, expires=None)
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
        create_cluster.fn(mesh(), "central", target=target, expires=None)


def test_delete_treats_not_found_as_done_and_retries_a_busy_cluster(
    sandbox: World, target: MeshwrightTarget
) -> None:
    assert delete_cluster.fn(target, "demo-project", "us-west1-b", "ghost") is None
    spec = mesh()
    create_cluster.fn(spec, "west", target=target, expires=None)
    with pytest.raises(TransientError, match="is currently creating cluster west"):
        delete_cluster.fn(target, "demo-project", "us-west1-b", "west")


def test_find_expired_clusters(sandbox: World, target: MeshwrightTarget) -> None:
    wait_cluster.fn(mesh(), create_cluster.fn(mesh(), "central", target=target, expires=1000), target=target)
    wait_cluster.fn(mesh(), create_cluster.fn(mesh(), "west", target=target, expires=5000), target=target)
    assert [c.name for c in find_expired_clusters.fn(target, "demo-project", now=2000)] == ["central"]


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


def test_an_adopted_cluster_takes_the_labels_and_ttl_the_spec_gives_it_now(
    sandbox: World, target: MeshwrightTarget
) -> None:
    first = create_cluster.fn(mesh(), "west", target=target, expires=1_900_000_000)
    wait_cluster.fn(mesh(), first, target=target)
    changed = mesh(ttl="6h")
    changed.cluster("west").labels["team"] = "edge"
    existing = [(c.labels, c.created) for c in find_mesh_clusters.fn(target, "demo-project", "m1")]
    assert naming.mesh_expiry(existing, 2 * 3600, now=0) == 1_900_000_000  # the same ttl: kept as it is
    created = existing[0][1]
    assert created is not None
    expires = naming.mesh_expiry(existing, 6 * 3600, now=0)
    assert expires == int(created + 6 * 3600)  # a new ttl counts from the mesh's creation
    create_cluster.fn(changed, "west", target=target, expires=expires)
    cluster = get_cluster(target, "demo-project", "us-west1-b", "west", step="test")
    assert cluster is not None
    assert dict(cluster.resource_labels) == {
        "team": "edge",
        "meshwright-mesh": "m1",
        "meshwright-expires": str(expires),
        "meshwright-ttl": str(6 * 3600),
    }


def test_gke_refuses_labels_set_with_a_stale_fingerprint(sandbox: World, target: MeshwrightTarget) -> None:
    create_cluster.fn(mesh(), "west", target=target, expires=None)
    request = container_v1.SetLabelsRequest(
        name="projects/demo-project/locations/us-west1-b/clusters/west",
        resource_labels={"a": "b"},
        label_fingerprint="00000000",
    )
    cloud = clients.cloud(target)
    with (
        pytest.raises(PermanentError, match="fingerprint mismatch; try again with the proper fingerprint"),
        cloud.call(cluster="west", step="test"),
    ):
        cloud.container.set_labels(request=request)


@pytest.fixture
def one_create_in_flight(sandbox: World) -> Iterator[None]:
    """The process's clients made with MESHWRIGHT_MAX_CREATES_IN_FLIGHT=1."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESHWRIGHT_MAX_CREATES_IN_FLIGHT", "1")
        settings.cache_clear()
        clients.reset_cache()
        yield
    settings.cache_clear()
    clients.reset_cache()


def test_a_create_waits_while_the_creates_in_flight_are_all_taken(
    target: MeshwrightTarget, one_create_in_flight: None
) -> None:
    spec = mesh()
    central = create_cluster.fn(spec, "central", target=target, expires=None)
    later = threading.Thread(
        target=create_cluster.fn, args=(spec, "west"), kwargs={"target": target, "expires": None}
    )
    later.start()
    later.join(0.5)
    assert later.is_alive()
    assert get_cluster(target, "demo-project", "us-west1-b", "west", step="test") is None
    wait_cluster.fn(spec, central, target=target)  # central is RUNNING: its slot is free
    later.join(5)
    assert not later.is_alive()
    assert get_cluster(target, "demo-project", "us-west1-b", "west", step="test") is not None
    assert clients.cloud(target).creates.held == {"west"}


def test_slots_are_held_and_given_back_by_name_once() -> None:
    slots = InFlight(1)
    slots.hold("a")
    assert slots.try_hold("a")  # a cached create, a retried wait: the same slot
    assert not slots.try_hold("b")
    slots.release("b")  # holds none: frees nothing
    assert not slots.try_hold("b")
    slots.release("a")
    slots.release("a")
    assert slots.try_hold("b")
    assert slots.held == {"b"}
