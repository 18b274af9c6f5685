"""The Istio tasks on a primary and its remote: what each release puts in the cluster, and reruns."""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import replace
from pathlib import Path

import kubernetes.client
import pytest
import yaml
from prefect.logging import disable_run_logger

from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.errors import InvalidRequest, OperationFailed
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
    istiod = get(target, clusters["central"], "deployment", "istiod", namespace=NS)
    assert {
        "app": "istiod",
        "istio": "pilot",
        "istio.io/rev": "default",
    }.items() <= istiod.metadata.labels.items()
    env = {e.name: e.value for e in istiod.spec.template.spec.containers[0].env}
    assert env["CLUSTER_ID"] == "central"
    assert env["EXTERNAL_ISTIOD"] == "true"
    volumes = {v.name: v for v in istiod.spec.template.spec.volumes}
    assert volumes["cacerts"].secret.secret_name == "cacerts"
    assert istiod.status.available_replicas == 1
    ports = {
        p.name: (p.port, p.target_port)
        for p in get(target, clusters["central"], "service", "istiod", namespace=NS).spec.ports
    }
    assert ports["https-webhook"] == (443, 15017)
    assert ports["https-dns"][0] == 15012


def test_mesh_config_and_injector_values_name_mesh_and_network(
    installed: tuple[MeshSpec, dict[str, ClusterAccess], str], shared_target: MeshwrightTarget
) -> None:
    target = shared_target
    _, clusters, _ = installed
    mesh = yaml.safe_load(get(target, clusters["central"], "configmap", "istio", namespace=NS).data["mesh"])
    assert (mesh["defaultConfig"]["meshId"], mesh["trustDomain"]) == ("m1", "cluster.local")
    values = json.loads(
        get(target, clusters["central"], "configmap", "istio-sidecar-injector", namespace=NS).data["values"]
    )
    assert values["global"]["network"] == "default"
    webhook = get(target, clusters["central"], "webhook", "istio-sidecar-injector")
    by_name = {w.name: w for w in webhook.webhooks}
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
        get(target, west, "deployment", "istiod", namespace=NS)
    assert missing.value.status == 404
    assert get(target, west, "service", "istiod", namespace=NS).spec.selector is None
    slice_ = get(target, west, "endpointslice", "istiod", namespace=NS)
    assert slice_.endpoints[0].addresses == [address]
    assert slice_.metadata.labels["kubernetes.io/service-name"] == "istiod"
    webhook = get(target, west, "webhook", "istio-sidecar-injector")
    assert {w.client_config.service.path for w in webhook.webhooks} == {"/inject/cluster/west/net/default"}
    assert get(target, west, "serviceaccount", "istio-reader-service-account", namespace=NS)


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
    assert (releases["istio-base"]["revision"], releases["istiod"]["revision"]) == ("1", "2")
    assert releases["istiod"]["chart"] == "istiod-1.30.3"


def _mark_release(target: MeshwrightTarget, access: ClusterAccess, name: str, status: str) -> None:
    """What an interrupted helm leaves: the release record's status stuck mid-operation."""
    core = kubernetes.client.CoreV1Api(api(target, access))
    secret = core.read_namespaced_secret(f"sh.helm.release.v1.{name}.v1", NS)
    # Helm's storage: base64 (Kubernetes) of base64 of gzipped JSON.
    release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret.data["release"]))))
    release["info"]["status"] = status
    packed = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(release).encode()))).decode()
    secret.data["release"], secret.metadata.labels["status"] = packed, status
    core.replace_namespaced_secret(secret.metadata.name, NS, secret)


def test_a_release_left_pending_by_an_interrupted_helm_is_settled_and_installed(
    sandbox: World, target: MeshwrightTarget, bundled: list[ChartRef], meshwright_home: Path
) -> None:
    spec, west = _west(target)
    install_release.fn(spec, west, "istio-base", bundled, target=target)
    _mark_release(target, west, "istio-base", "pending-install")

    again = install_release.fn(spec, west, "istio-base", bundled, target=target)

    assert (again.action, again.revision) == ("installed", 1)
    releases = {r["name"]: r for r in helm_releases(target, west)}
    assert releases["istio-base"]["status"] == "deployed"


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
            match=r"^wait_ready_istiod \[central\]: release istiod: .*not rolled out after 1s",
        ):
            wait_release_ready.fn(spec, central, "istiod", target=target)
    finally:
        world.stop()
        clients.reset_cache()
