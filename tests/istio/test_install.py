"""The Istio tasks on a primary and its remote: what each release puts in the cluster, and reruns."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.watch
import pytest
import yaml
from prefect.logging import disable_run_logger

from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.errors import InvalidRequest, OperationFailed, TransientError
from meshwright.kube import connect
from meshwright.models import ChartRef, ClusterAccess
from meshwright.sandbox.world import World
from meshwright.spec import MeshSpec, Target
from tasks.istio import (
    ensure_helm_release,
    expose_on_gateway,
    gateway_address,
    install_release,
    prepare_namespace,
    wait_release_ready,
)
from tasks.trust import ensure_cacerts, ensure_root_ca
from tests.istio.support import api, bring_up, get, helm_releases, primary_remote
from tests.support import FAST, register

NS = "istio-system"


@pytest.fixture(scope="module")
def installed(
    shared_target: MeshwrightTarget, bundled: list[ChartRef]
) -> tuple[MeshSpec, dict[str, ClusterAccess], str]:
    """central (primary) and west (remote) with every step done, in the flow's order."""
    spec, target = primary_remote(), shared_target
    with disable_run_logger():
        return _install(spec, target, bundled)


def _install(
    spec: MeshSpec, target: MeshwrightTarget, bundled: list[ChartRef]
) -> tuple[MeshSpec, dict[str, ClusterAccess], str]:
    clusters = bring_up(spec, target)
    root = ensure_root_ca.fn(spec)
    central, west = clusters["central"], clusters["west"]
    for access in (central, west):
        prepare_namespace.fn(spec, access, target=target)
        ensure_cacerts.fn(spec, access, root, target=target)
    for release in ("istio-base", "istiod", "istio-eastwestgateway"):
        install_release.fn(spec, central, release, bundled, target=target)
        assert wait_release_ready.fn(spec, central, release, target=target) is (release != "istio-base")
    address = gateway_address.fn(central, target=target)
    expose_on_gateway.fn(spec, central, target=target)
    install_release.fn(spec, west, "istio-base", bundled, target=target)
    install_release.fn(spec, west, "istiod", bundled, target=target, remote_pilot_address=address)
    assert not wait_release_ready.fn(spec, west, "istiod", target=target)
    return spec, clusters, address


def test_primary_istiod_carries_the_cluster_id_and_mounts_cacerts(
    installed: tuple[MeshSpec, dict[str, ClusterAccess], str], shared_target: MeshwrightTarget
) -> None:
    target = shared_target
    _, clusters, _ = installed
    istiod = get(target, clusters["central"], "deployment", "istiod-1-30-3", namespace=NS)
    assert {
        "app": "istiod",
        "istio": "pilot",
        "istio.io/rev": "1-30-3",
    }.items() <= istiod.metadata.labels.items()
    env = {e.name: e.value for e in istiod.spec.template.spec.containers[0].env}
    assert env["CLUSTER_ID"] == "central"
    assert env["EXTERNAL_ISTIOD"] == "true"
    volumes = {v.name: v for v in istiod.spec.template.spec.volumes}
    assert volumes["cacerts"].secret.secret_name == "cacerts"
    assert istiod.status.available_replicas == 1
    ports = {
        p.name: (p.port, p.target_port)
        for p in get(target, clusters["central"], "service", "istiod-1-30-3", namespace=NS).spec.ports
    }
    assert ports["https-webhook"] == (443, 15017)
    assert ports["https-dns"][0] == 15012


def test_mesh_config_and_injector_values_name_mesh_and_network(
    installed: tuple[MeshSpec, dict[str, ClusterAccess], str], shared_target: MeshwrightTarget
) -> None:
    target = shared_target
    _, clusters, _ = installed
    mesh = yaml.safe_load(
        get(target, clusters["central"], "configmap", "istio-1-30-3", namespace=NS).data["mesh"]
    )
    assert (mesh["defaultConfig"]["meshId"], mesh["trustDomain"]) == ("m1", "cluster.local")
    values = json.loads(
        get(target, clusters["central"], "configmap", "istio-sidecar-injector-1-30-3", namespace=NS).data[
            "values"
        ]
    )
    assert values["global"]["network"] == "default"
    webhook = get(target, clusters["central"], "webhook", "istio-revision-tag-default")  # the tag takes
    by_name = {w.name: w for w in webhook.webhooks}  # istio-injection=enabled (revision-tags-mwc.yaml)
    assert {w.client_config.service.name for w in webhook.webhooks} == {"istiod-1-30-3"}
    namespaced = by_name["namespace.sidecar-injector.istio.io"]
    assert namespaced.client_config.service.path == "/inject"
    assert namespaced.namespace_selector.match_expressions[0].to_dict() == {
        "key": "istio-injection",
        "operator": "In",
        "values": ["enabled"],
    }


def test_the_eastwest_gateway_has_istios_labels_ports_and_exposes_istiod(
    installed: tuple[MeshSpec, dict[str, ClusterAccess], str], shared_target: MeshwrightTarget
) -> None:
    target = shared_target
    _, clusters, address = installed
    service = get(target, clusters["central"], "service", "istio-eastwestgateway", namespace=NS)
    assert service.spec.type == "LoadBalancer"
    assert service.spec.selector == {"app": "istio-eastwestgateway", "istio": "eastwestgateway"}
    assert [p.port for p in service.spec.ports] == [15021, 15443, 15012, 15017]
    assert service.status.load_balancer.ingress[0].ip == address
    objects = kubernetes.client.CustomObjectsApi(api(target, clusters["central"]))
    gateway = objects.get_namespaced_custom_object(
        "networking.istio.io", "v1", NS, "gateways", "istiod-gateway"
    )
    assert [s["port"]["number"] for s in gateway["spec"]["servers"]] == [15012, 15017]
    routes = objects.get_namespaced_custom_object(
        "networking.istio.io", "v1", NS, "virtualservices", "istiod-vs"
    )
    assert routes["spec"]["gateways"] == ["istiod-gateway"]


def test_the_remote_points_at_its_primarys_gateway_and_runs_no_istiod(
    installed: tuple[MeshSpec, dict[str, ClusterAccess], str], shared_target: MeshwrightTarget
) -> None:
    target = shared_target
    _, clusters, address = installed
    west = clusters["west"]
    namespace = get(target, west, "namespace", NS)
    assert namespace.metadata.annotations["topology.istio.io/controlPlaneClusters"] == "central"
    with pytest.raises(kubernetes.client.ApiException) as missing:
        get(target, west, "deployment", "istiod-1-30-3", namespace=NS)
    assert missing.value.status == 404
    assert get(target, west, "service", "istiod-1-30-3", namespace=NS).spec.selector is None
    slice_ = get(target, west, "endpointslice", "istiod-1-30-3", namespace=NS)
    assert slice_.endpoints[0].addresses == [address]
    assert slice_.metadata.labels["kubernetes.io/service-name"] == "istiod-1-30-3"
    webhook = get(target, west, "webhook", "istio-sidecar-injector-1-30-3")
    assert {w.client_config.service.path for w in webhook.webhooks} == {"/inject/cluster/west/net/default"}
    assert get(target, west, "serviceaccount", "istio-reader-service-account", namespace=NS)


def _as_reader(target: MeshwrightTarget, access: ClusterAccess) -> kubernetes.client.ApiClient:
    """A client with a fresh token of the reader account, as a remote secret would carry."""
    request = {"spec": {"expirationSeconds": 3600}}
    core = kubernetes.client.CoreV1Api(api(target, access))
    token = str(
        core.create_namespaced_service_account_token("istio-reader-service-account", NS, request).status.token
    )
    return connect(access.endpoint, access.ca_certificate, lambda: token)


def _status(call: Callable[[], Any]) -> int:
    try:
        call()
    except kubernetes.client.ApiException as e:
        return int(e.status)
    return 200


def _informer_lists(reader: kubernetes.client.ApiClient) -> dict[str, Callable[[], Any]]:
    """What istiod's informers list and watch in a cluster it reads through a remote secret."""
    core, custom = kubernetes.client.CoreV1Api(reader), kubernetes.client.CustomObjectsApi(reader)
    slices = kubernetes.client.DiscoveryV1Api(reader).list_endpoint_slice_for_all_namespaces
    return {
        "namespaces": core.list_namespace,
        "pods": core.list_pod_for_all_namespaces,
        "services": core.list_service_for_all_namespaces,
        "nodes": core.list_node,
        "secrets": core.list_secret_for_all_namespaces,
        "configmaps": core.list_config_map_for_all_namespaces,
        "endpointslices": slices,
        "crds": kubernetes.client.ApiextensionsV1Api(reader).list_custom_resource_definition,
        "replicasets": kubernetes.client.AppsV1Api(reader).list_replica_set_for_all_namespaces,
        "serviceentries": lambda: custom.list_cluster_custom_object(
            "networking.istio.io", "v1", "serviceentries"
        ),
        "peerauthentications": lambda: custom.list_cluster_custom_object(
            "security.istio.io", "v1", "peerauthentications"
        ),
        "watch namespaces": lambda: list(
            kubernetes.watch.Watch().stream(core.list_namespace, timeout_seconds=1)
        ),
    }


def _writes(reader: kubernetes.client.ApiClient) -> dict[str, Callable[[], Any]]:
    """Writes no reader profile grants."""
    core, apps = kubernetes.client.CoreV1Api(reader), kubernetes.client.AppsV1Api(reader)
    return {
        "create secret": lambda: core.create_namespaced_secret(NS, {"metadata": {"name": "x"}}),
        "patch service": lambda: core.patch_namespaced_service(
            "istiod-1-30-3", NS, {"metadata": {"labels": {"a": "b"}}}
        ),
        "delete namespace": lambda: core.delete_namespace("default"),
        "create pod": lambda: core.create_namespaced_pod(NS, {"metadata": {"name": "p"}}),
        "scale istiod": lambda: apps.patch_namespaced_deployment_scale(
            "istiod-1-30-3", NS, {"spec": {"replicas": 3}}
        ),
    }


def test_the_reader_token_lists_what_istiods_informers_need_and_writes_only_what_its_profile_allows(
    installed: tuple[MeshSpec, dict[str, ClusterAccess], str], shared_target: MeshwrightTarget
) -> None:
    """The bundled charts' RBAC, enforced: central's reader (primary profile) only reads; west's (remote
    profile) also writes the configmaps and webhook configs its primary's istiod manages."""
    _, clusters, _ = installed
    for name, access in clusters.items():
        reader = _as_reader(shared_target, access)
        lists = {what: _status(call) for what, call in _informer_lists(reader).items()}
        assert lists == dict.fromkeys(lists, 200), name
        writes = _writes(reader)
        assert {what: _status(call) for what, call in writes.items()} == dict.fromkeys(writes, 403), name
    configmap = {"metadata": {"name": "written-by-the-reader"}}
    central, west = clusters["central"], clusters["west"]
    as_central = kubernetes.client.CoreV1Api(_as_reader(shared_target, central))
    assert _status(lambda: as_central.create_namespaced_config_map(NS, configmap)) == 403
    as_west = kubernetes.client.CoreV1Api(_as_reader(shared_target, west))
    assert _status(lambda: as_west.create_namespaced_config_map(NS, configmap)) == 200
    webhooks = kubernetes.client.AdmissionregistrationV1Api(as_west.api_client)
    assert _status(lambda: webhooks.list_mutating_webhook_configuration()) == 200


def _west(target: MeshwrightTarget) -> tuple[MeshSpec, ClusterAccess]:
    """A primary-remote mesh's remote, RUNNING, with its istio-system."""
    spec = primary_remote()
    west = bring_up(spec, target)["west"]
    prepare_namespace.fn(spec, west, target=target)
    return spec, west


def test_a_rerun_makes_no_revision_and_a_changed_value_upgrades_only_its_release(
    sandbox: World, target: MeshwrightTarget, bundled: list[ChartRef], meshwright_home: Path
) -> None:
    spec, west = _west(target)

    def ensure(address: str) -> list[tuple[str, int]]:
        results = [
            install_release.fn(spec, west, "istio-base", bundled, target=target),
            install_release.fn(spec, west, "istiod", bundled, target=target, remote_pilot_address=address),
        ]
        return [(r.action, r.revision) for r in results]

    assert ensure("10.0.0.7") == [("installed", 1), ("installed", 1)]
    assert ensure("10.0.0.7") == [("unchanged", 1), ("unchanged", 1)]
    assert ensure("10.9.9.9") == [("unchanged", 1), ("upgraded", 2)]
    releases = {r["name"]: r for r in helm_releases(target, west)}
    assert (releases["istio-base"]["revision"], releases["istiod-1-30-3"]["revision"]) == ("1", "2")
    assert releases["istiod-1-30-3"]["chart"] == "istiod-1.30.3"


def _mark_release(
    target: MeshwrightTarget, access: ClusterAccess, name: str, status: str, *, since: str | None = None
) -> None:
    """What an interrupted helm leaves: the release record's status stuck mid-operation (since
    `since`: helm's last_deployed, which `helm get metadata` reports as deployedAt)."""
    core = kubernetes.client.CoreV1Api(api(target, access))
    secret = core.read_namespaced_secret(f"sh.helm.release.v1.{name}.v1", NS)
    # Helm's storage: base64 (Kubernetes) of base64 of gzipped JSON.
    release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret.data["release"]))))
    release["info"]["status"] = status
    if since is not None:
        release["info"]["last_deployed"] = since
    packed = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(release).encode()))).decode()
    secret.data["release"], secret.metadata.labels["status"] = packed, status
    core.replace_namespaced_secret(secret.metadata.name, NS, secret)


def test_a_release_left_pending_by_an_interrupted_helm_is_settled_and_installed(
    sandbox: World, target: MeshwrightTarget, bundled: list[ChartRef], meshwright_home: Path
) -> None:
    spec, west = _west(target)
    install_release.fn(spec, west, "istio-base", bundled, target=target)
    _mark_release(target, west, "istio-base", "pending-install", since="2026-01-01T00:00:00Z")

    again = install_release.fn(spec, west, "istio-base", bundled, target=target)

    assert (again.action, again.revision) == ("installed", 1)
    releases = {r["name"]: r for r in helm_releases(target, west)}
    assert releases["istio-base"]["status"] == "deployed"


def test_a_release_another_run_is_installing_is_waited_for_never_uninstalled(
    sandbox: World, target: MeshwrightTarget, bundled: list[ChartRef], meshwright_home: Path
) -> None:
    spec, west = _west(target)
    install_release.fn(spec, west, "istio-base", bundled, target=target)
    _mark_release(target, west, "istio-base", "pending-install")  # just now: a live helm's

    with pytest.raises(TransientError, match=r"is pending-install since .*another run's helm may be at work"):
        install_release.fn(spec, west, "istio-base", bundled, target=target)
    record = kubernetes.client.CoreV1Api(api(target, west)).read_namespaced_secret(
        "sh.helm.release.v1.istio-base.v1", NS
    )
    assert record.metadata.labels["status"] == "pending-install"  # left as the other run has it


def test_a_values_key_the_chart_rejects_is_one_line_naming_cluster_and_step(
    sandbox: World, target: MeshwrightTarget, bundled: list[ChartRef], meshwright_home: Path
) -> None:
    spec = primary_remote()
    central = bring_up(spec, target)["central"]
    prepare_namespace.fn(spec, central, target=target)
    gateway = next(r for r in bundled if r.chart == "gateway")
    with pytest.raises(InvalidRequest) as raised:
        ensure_helm_release(
            target,
            central,
            gateway,
            "istio-eastwestgateway",
            {"bogus": True},
            step="install_istio-eastwestgateway",
        )
    assert "Additional property bogus is not allowed" in str(raised.value)
    assert str(raised.value).startswith("install_istio-eastwestgateway [central]: ")


def test_an_istiod_that_never_becomes_ready_names_cluster_and_release(
    tmp_path: Path, bundled: list[ChartRef], monkeypatch: pytest.MonkeyPatch, meshwright_home: Path
) -> None:
    world = World(tmp_path / "sandbox", latency=replace(FAST, rollout=30.0)).start()
    try:
        register(world)
        clients.reset_cache()
        target = MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(tmp_path / "sandbox"))
        monkeypatch.setitem(clients.WAITS, Target.SANDBOX, replace(clients.WAITS[Target.SANDBOX], ready=1.0))
        spec = primary_remote()
        central = bring_up(spec, target)["central"]
        prepare_namespace.fn(spec, central, target=target)
        install_release.fn(spec, central, "istio-base", bundled, target=target)
        install_release.fn(spec, central, "istiod", bundled, target=target)
        with pytest.raises(
            OperationFailed,
            match=r"^wait_ready_istiod \[central\]: release istiod-1-30-3: .*not rolled out after 1s",
        ):
            wait_release_ready.fn(spec, central, "istiod", target=target)
    finally:
        world.stop()
        clients.reset_cache()
