"""End to end on the sandbox: the mesh and Bookinfo built by the real tasks, traffic with a plain HTTP
client at the ingress gateway's loopback address, and breakages made with the real clients."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import kubernetes.client
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.logging import disable_run_logger

from flows.verify import verify_mesh
from meshwright import bookinfo, clients, kube, naming
from meshwright.helm import resolve_charts
from meshwright.mtls import MtlsReport, check_mtls
from meshwright.sandbox.contract import BUNDLED_CHARTS
from meshwright.verify import ControlPlaneBroken, VerifyReport, broken
from tasks.bookinfo import deploy_bookinfo
from tasks.mtls import observe_mtls
from tasks.network import ensure_firewall
from tasks.verify import ingress_address
from tests.bookinfo.support import Built, routing_caught_up, running_mesh, traffic
from tests.dataplane.meshes import primary_remote
from tests.support import wait_for


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    yield from running_mesh(tmp_path_factory.mktemp("traffic"), primary_remote("bkt"))


def test_the_ingress_gateway_listens_on_a_loopback_address(built: Built) -> None:
    _, target, mesh, clusters = built
    with disable_run_logger():
        address = ingress_address.fn(mesh, clusters, target=target)
    assert address is not None
    assert address.startswith("127.")
    assert not address.startswith("127.0.")


def test_healthy_mesh_serves_every_placed_version(built: Built) -> None:
    report = traffic(built)
    assert report.ok, report.problems
    assert set(report.served) == {"central", "west"}
    assert set(report.served["central"]) == {"v1", "v2"}
    assert report.served["west"]["v3"] > 0


def test_without_the_firewall_rule_west_never_answers_and_verify_says_why(built: Built) -> None:
    _, target, mesh, clusters = built
    cloud = clients.cloud(target)
    cloud.firewalls.delete(project=mesh.project, firewall=naming.firewall_name(mesh.name)).result()
    try:
        report = traffic(built)
        assert not report.ok
        line = next(p for p in report.problems if p.startswith("reviews-v3 on west never answered"))
        assert "no firewall rule lets 10.8.0.0/14 reach west's nodes on tcp:9080" in line
    finally:
        with disable_run_logger():
            ensure_firewall.fn(mesh, [a.pod_cidr for a in clusters.values()], target=target, expires=None)
    assert traffic(built).ok


def test_a_service_deleted_in_the_callers_cluster_breaks_details(built: Built) -> None:
    _, target, _, clusters = built
    core = kubernetes.client.CoreV1Api(
        clients.cloud(target).kube(clusters["central"].endpoint, clusters["central"].ca_certificate)
    )
    saved = core.read_namespaced_service("details", "bookinfo")
    core.delete_namespaced_service("details", "bookinfo")
    try:
        report = traffic(built, requests=5)
        assert any(p.startswith("5/5 requests to /productpage failed") for p in report.problems)
        assert any("Service bookinfo/details is missing in central" in p for p in report.problems)
    finally:
        body = {
            "metadata": {"name": "details", "namespace": "bookinfo", "labels": saved.metadata.labels},
            "spec": {"ports": [{"port": 9080, "name": "http"}], "selector": {"app": "details"}},
        }
        core.create_namespaced_service("bookinfo", body)


def test_a_remote_without_reachable_istiod_cannot_create_injected_pods(built: Built) -> None:
    _, target, _, clusters = built
    central = clients.cloud(target).kube(clusters["central"].endpoint, clusters["central"].ca_certificate)
    custom = kubernetes.client.CustomObjectsApi(central)
    saved = custom.get_namespaced_custom_object(
        "networking.istio.io", "v1", "istio-system", "gateways", "istiod-gateway"
    )
    custom.delete_namespaced_custom_object(
        "networking.istio.io", "v1", "istio-system", "gateways", "istiod-gateway"
    )
    west = clients.cloud(target).kube(clusters["west"].endpoint, clusters["west"].ca_certificate)
    apps = kubernetes.client.AppsV1Api(west)
    labels = {"app": "probe"}
    body = {
        "metadata": {"name": "probe", "namespace": "bookinfo"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
    try:
        apps.create_namespaced_deployment("bookinfo", body)
        deadline = time.monotonic() + 10
        message = ""
        while time.monotonic() < deadline and not message:
            for rs in apps.list_namespaced_replica_set("bookinfo", label_selector="app=probe").items:
                for c in (rs.status.conditions if rs.status else None) or []:
                    if c.type == "ReplicaFailure":
                        message = c.message or ""
            time.sleep(0.1)
        assert 'failed calling webhook "namespace.sidecar-injector.istio.io"' in message
    finally:
        apps.delete_namespaced_deployment("probe", "bookinfo")
        saved["metadata"] = {"name": "istiod-gateway", "namespace": "istio-system"}
        custom.create_namespaced_custom_object("networking.istio.io", "v1", "istio-system", "gateways", saved)


@contextlib.contextmanager
def _without_remote_secret(built: Built, source: str) -> Iterator[None]:
    world, target, _, clusters = built
    core = kubernetes.client.CoreV1Api(
        clients.cloud(target).kube(clusters["central"].endpoint, clusters["central"].ca_certificate)
    )
    name = naming.remote_secret_name(source)
    saved = core.read_namespaced_secret(name, naming.ISTIO_NAMESPACE)
    core.delete_namespaced_secret(name, naming.ISTIO_NAMESPACE)
    routing_caught_up(world)
    try:
        yield
    finally:
        body = {
            "metadata": {
                "name": name,
                "labels": saved.metadata.labels,
                "annotations": saved.metadata.annotations,
            },
            "data": saved.data,
        }
        core.create_namespaced_secret(naming.ISTIO_NAMESPACE, body)
        routing_caught_up(world)


def test_a_missing_remote_secret_hides_west_from_central(built: Built) -> None:
    with _without_remote_secret(built, "west"):
        report = traffic(built, requests=6)
        assert "west" not in report.served
        assert any(p.startswith("reviews-v3 on west never answered") for p in report.problems)
    assert traffic(built, requests=6).ok


@pytest.mark.usefixtures("harness")
def test_verify_mesh_flow_checks_traffic_and_publishes_it(
    built: Built, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, target, mesh, _ = built
    path = tmp_path_factory.mktemp("spec") / "mesh.yaml"
    path.write_text(yaml.safe_dump(mesh.model_dump(mode="json", exclude_none=True)))
    report = verify_mesh(spec=str(path), connection=target, settle=5.0, requests=10)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["mesh-bkt-traffic"]))
        )
    with _without_remote_secret(built, "west"), pytest.raises(ControlPlaneBroken) as broken:
        verify_mesh(spec=str(path), connection=target, settle=0.5, requests=10)
    assert "central does not see west" in broken.value.message
    assert (
        "reviews-v3 on west never answered" in broken.value.message
    )  # traffic joins the control plane's lines
    assert report.ok
    assert report.traffic is not None
    assert report.traffic.served["west"]["v3"] > 0
    assert report.mtls is not None
    assert report.mtls.summary().startswith("mTLS STRICT: plaintext refused in central, west, east")
    rows = json.loads(str(artifacts[0].data))
    assert {
        "cluster": "west",
        "workload": "reviews-v3",
        "answers": str(report.traffic.served["west"]["v3"]),
    } in rows


def _rolled_out(apps: kubernetes.client.AppsV1Api, name: str, namespace: str) -> bool:
    """The newest template's replicas all available and none unavailable (while the sandbox rolls out,
    availableReplicas still counts the old pods: unavailableReplicas is what tells)."""
    dep = apps.read_namespaced_deployment(name, namespace)
    status, want = dep.status, dep.spec.replicas
    return bool(
        status
        and (status.observed_generation or 0) >= (dep.metadata.generation or 0)
        and status.updated_replicas == status.available_replicas == want
        and not status.unavailable_replicas
    )


def test_pods_started_without_injection_fail_then_deploy_bookinfo_restarts_them(built: Built) -> None:
    _, target, mesh, clusters = built
    west = clients.cloud(target).kube(clusters["west"].endpoint, clusters["west"].ca_certificate)
    core, apps = kubernetes.client.CoreV1Api(west), kubernetes.client.AppsV1Api(west)
    core.patch_namespace("bookinfo", {"metadata": {"labels": {"istio-injection": None}}})
    restart = {
        "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}
    }
    apps.patch_namespaced_deployment("reviews-v3", "bookinfo", restart)
    wait_for(lambda: _rolled_out(apps, "reviews-v3", "bookinfo"), what="reviews-v3 rolled out", timeout=10)
    report = traffic(built, requests=6)
    line = next(p for p in report.problems if p.startswith("reviews-v3 on west never answered"))
    assert "namespace bookinfo in west is not labelled istio-injection=enabled" in line
    with disable_run_logger():
        repaired = deploy_bookinfo.fn(
            mesh, clusters["west"], resolve_charts(str(BUNDLED_CHARTS), "1.30.3", hint=""), target=target
        )
    assert repaired.restarted == ["reviews-v3"]
    wait_for(lambda: _rolled_out(apps, "reviews-v3", "bookinfo"), what="reviews-v3 restarted", timeout=10)
    assert traffic(built, requests=6).ok


def _mtls(built: Built) -> MtlsReport:
    """What verify reports of mTLS now: each cluster's policy and plaintext probe, with the traffic."""
    _, target, mesh, clusters = built
    mesh_traffic = traffic(built, requests=5)
    with disable_run_logger():
        seen = {n: observe_mtls.fn(mesh, a, target=target) for n, a in clusters.items()}
    return check_mtls(mesh, seen, mesh_traffic)


def test_a_caller_without_sidecar_is_refused_while_mesh_traffic_crosses_clusters(built: Built) -> None:
    report = _mtls(built)
    assert report.ok, report.problems
    assert {s.cluster: s.probe.exit_code if s.probe else None for s in report.clusters} == {
        "central": 56,
        "west": 56,
        "east": 56,
    }
    assert report.summary() == (
        "mTLS STRICT: plaintext refused in central, west, east (curl exit 56: Recv failure: Connection reset"
        " by peer); mesh traffic passes (10 requests through the ingress, reviews served in central, west)"
    )


def test_without_the_strict_policy_verification_fails_naming_mtls(built: Built) -> None:
    _, target, mesh, clusters = built
    assert mesh.bookinfo is not None
    client = clients.cloud(target).kube_for(clusters["central"])
    custom = kubernetes.client.CustomObjectsApi(client)
    custom.delete_namespaced_custom_object(
        "security.istio.io", "v1", "bookinfo", "peerauthentications", "default"
    )
    try:
        routing_caught_up(built[0])
        report = _mtls(built)
    finally:
        kube.apply(
            client, [bookinfo.peer_authentication("bookinfo", "STRICT")], cluster="central", step="test"
        )
    assert (
        "mTLS STRICT expected: central: namespace bookinfo is PERMISSIVE (no PeerAuthentication)"
        in report.problems
    )
    assert (
        "mTLS STRICT expected: west: plaintext from a pod without sidecar was answered (http://reviews.bookinfo:9080/)"
        in report.problems
    )
    error = broken(VerifyReport(mesh=mesh.name, tables=[], roots={}, problems=[], mtls=report))
    assert error is not None
    assert error.message.startswith("mTLS of Bookinfo has 4 problem(s):")
