"""The drills' task bodies against one sandbox mesh (Bookinfo split over central, west and east), with
requests flowing through its ingress gateway while they act."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.logging import disable_run_logger

from flows.drills import run_drills
from flows.verify import verify_mesh
from meshwright import clients, naming
from meshwright import remote_secrets as rs
from meshwright.traffic import good
from meshwright.verify import VerifyReport
from tasks.drills import _write_all, drill_failover, drill_rotate_secrets
from tasks.remote_secrets import current_token_secret, exchange_remote_secret
from tasks.traffic import Load
from tasks.verify import ingress_address
from tests.bookinfo.support import Built, routing_caught_up, running_mesh
from tests.dataplane.meshes import CENTRAL, EAST, WEST, mesh_spec, primary_remote
from tests.support import wait_for


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    yield from running_mesh(tmp_path_factory.mktemp("drills"), primary_remote("drl"))


@pytest.fixture(scope="module")
def address(built: Built) -> str:
    _, target, mesh, clusters = built
    with disable_run_logger():
        found = ingress_address.fn(mesh, dict(clusters), target=target)
    assert found is not None
    return found


def _core(built: Built, cluster: str) -> kubernetes.client.CoreV1Api:
    _, target, _, clusters = built
    return kubernetes.client.CoreV1Api(clients.cloud(target).kube_for(clusters[cluster]))


def test_failover_drill_serves_reviews_from_central_while_west_is_at_zero_and_brings_it_back(
    built: Built, address: str
) -> None:
    world, target, mesh, clusters = built
    routing_caught_up(world)
    with disable_run_logger():
        result = drill_failover.fn(mesh, dict(clusters), address, target=target)

    assert result.ok, result.problems
    assert result.subject == "reviews-v3 on west"
    assert result.failed == 0
    assert result.served["central"]  # the other cluster served while west had no reviews pod
    assert result.back_seconds is not None
    apps = kubernetes.client.AppsV1Api(clients.cloud(target).kube_for(clusters["west"]))
    assert apps.read_namespaced_deployment("reviews-v3", "bookinfo").spec.replicas == 1


def test_rotation_drill_replaces_and_revokes_every_reader_token_without_a_failed_request(
    built: Built, address: str
) -> None:
    world, target, mesh, clusters = built
    old = {c: current_token_secret(_core(built, c), clusters[c]) for c in ("west", "east")}
    routing_caught_up(world)
    with disable_run_logger():
        result = drill_rotate_secrets.fn(mesh, dict(clusters), address, target=target)

    assert result.ok, result.problems
    assert result.failed == 0
    assert result.requests > 20
    assert [(r.cluster, r.old_secret, r.revoked) for r in result.rotated] == [
        ("west", old["west"], True),
        ("east", old["east"], True),
    ]
    for c in ("west", "east"):
        names = [
            s.metadata.name for s in _core(built, c).list_namespaced_secret(naming.ISTIO_NAMESPACE).items
        ]
        assert old[c] not in names
        new = next(r.new_secret for r in result.rotated if r.cluster == c)
        assert current_token_secret(_core(built, c), clusters[c]) == new
    assert "eyJ" not in result.model_dump_json()  # no JWT (header {"alg":...) anywhere in the result


def test_a_later_exchange_adopts_the_rotated_token_and_changes_nothing(built: Built) -> None:
    _, target, _, clusters = built
    with disable_run_logger():
        result = exchange_remote_secret.fn(clusters["east"], clusters["central"], target=target)
    assert result.action == "unchanged"


def _token(core: kubernetes.client.CoreV1Api, name: str) -> str:
    data = core.read_namespaced_secret(name, naming.ISTIO_NAMESPACE).data or {}
    return base64.b64decode(data["token"]).decode()


def test_revoking_the_old_token_before_the_new_remote_secret_is_in_fails_requests(
    built: Built, address: str
) -> None:
    world, target, _, clusters = built
    east = _core(built, "east")
    old = current_token_secret(east, clusters["east"])
    new = rs.rotated_token_name(time.time() + 3600)
    east.create_namespaced_secret(naming.ISTIO_NAMESPACE, rs.reader_token_secret(new))
    token = wait_for(
        lambda: (east.read_namespaced_secret(new, naming.ISTIO_NAMESPACE).data or {}).get("token"),
        what="token",
    )
    routing_caught_up(world)
    with Load(address) as load:
        load.until(lambda s, now: now >= 0.3, within=1.0)
        east.delete_namespaced_secret(old, naming.ISTIO_NAMESPACE)  # wrong order: revoked first
        load.until(lambda s, now: now >= 2.3, within=5.0)
        _write_all(
            clients.cloud(target), clusters["east"], [clusters["central"]], base64.b64decode(token).decode()
        )
        load.until(lambda s, now: now >= 3.3, within=5.0)

    bad = [s for s in load.samples if not good(s.reply)]
    assert bad, "revoking east's token first must cost requests (details-v1 runs only on east)"
    assert all(s.at > 0.3 for s in bad)
    assert not [s for s in load.samples[-10:] if not good(s.reply)]  # whole again once the new secret is in


# Istio's locality test rule (tests/integration/pilot/locality_test.go), for Bookinfo's reviews.
LOCALITY_RULE = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "reviews-locality", "namespace": "bookinfo"},
    "spec": {
        "host": "reviews",
        "trafficPolicy": {
            "loadBalancer": {"simple": "ROUND_ROBIN", "localityLbSetting": {"enabled": True}},
            "outlierDetection": {"interval": "1s", "baseEjectionTime": "10m", "maxEjectionPercent": 100},
        },
    },
}


@contextlib.contextmanager
def _locality_rule(built: Built) -> Iterator[None]:
    """The rule in central, productpage's config cluster, for as long as the block runs."""
    world, target, _, clusters = built
    custom = kubernetes.client.CustomObjectsApi(clients.cloud(target).kube_for(clusters["central"]))
    group = ("networking.istio.io", "v1", "bookinfo", "destinationrules")
    custom.create_namespaced_custom_object(*group, LOCALITY_RULE)
    try:
        routing_caught_up(world)
        yield
    finally:
        custom.delete_namespaced_custom_object(*group, "reviews-locality")
        routing_caught_up(world)


def test_with_a_locality_rule_the_failover_drill_takes_away_a_version_that_serves_productpage(
    built: Built, address: str
) -> None:
    _, target, mesh, clusters = built
    with _locality_rule(built), disable_run_logger():
        result = drill_failover.fn(mesh, dict(clusters), address, target=target)

    assert result.ok, result.problems
    assert result.subject == "reviews-v1 on central"  # west's v3 gets nothing from central's productpage
    assert set(result.served) == {"central"}


@pytest.mark.usefixtures("harness")
def test_verify_with_both_drills_reports_them_and_publishes_their_table(built: Built, tmp_path: Path) -> None:
    _, target, mesh, _ = built
    path = tmp_path / "mesh.yaml"
    path.write_text(yaml.safe_dump(mesh.model_dump(mode="json", exclude_none=True)))

    report = verify_mesh(
        spec=str(path), connection=target, settle=5.0, requests=10, drills=["failover", "rotate-secrets"]
    )

    assert report.ok
    assert [(d.drill, d.ok, d.failed) for d in report.drills] == [
        ("failover", True, 0),
        ("rotate-secrets", True, 0),
    ]
    assert json.loads(report.model_dump_json())["drills"][1]["rotated"][0]["cluster"] == "west"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["mesh-drl-drills"]))
        )
    assert [row["drill"] for row in json.loads(str(artifacts[0].data))] == ["failover", "rotate-secrets"]


@pytest.mark.usefixtures("harness")
def test_a_mesh_the_failover_drill_cannot_drill_is_a_problem_of_the_drill_not_a_crash(built: Built) -> None:
    _, target, _, clusters = built
    at_home = ["productpage-v1", "reviews-v1", "reviews-v2", "ratings-v1", "details-v1"]
    spec = mesh_spec("drl", [CENTRAL, WEST, EAST], {"central": at_home})
    report = VerifyReport(mesh="drl", tables=[], roots={}, problems=[])

    (result,) = run_drills(spec, dict(clusters), report, target=target, names=["failover"])

    assert not result.ok
    assert "needs Bookinfo's reviews placed in two clusters at least" in result.problems[0]
