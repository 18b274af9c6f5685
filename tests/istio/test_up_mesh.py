"""Whole `up_mesh` runs on the sandbox for the three topologies (few: each costs seconds)."""

from __future__ import annotations

import base64
import ipaddress
import shutil
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml
from prefect.blocks.system import Secret

from flows.mesh import up_mesh
from meshwright import clients, pki
from meshwright.clients import MeshwrightTarget
from meshwright.errors import InvalidRequest, NotFound
from meshwright.models import MeshReport
from meshwright.sandbox.contract import BUNDLED_CHARTS
from meshwright.sandbox.world import World
from meshwright.spec import load_spec
from meshwright.status import list_clusters, mesh_status
from tasks.verify import locate_clusters
from tests.istio.flow_graph import planned_graph, recorded_graph
from tests.istio.support import get, helm_releases

pytestmark = pytest.mark.usefixtures("harness", "meshwright_home")
DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"
NS = "istio-system"


def offline(deployment: str, directory: Path, /, **changes: Any) -> str:
    """A spec of deployments/ as the sandbox runs it here: the tests have no internet, so a spec that
    names Istio's repository gets the bundled charts instead."""
    data = yaml.safe_load((DEPLOYMENTS / deployment).read_text())
    if str(data.get("istio", {}).get("charts", "")).startswith("http"):
        del data["istio"]["charts"]
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    path = directory / deployment
    path.write_text(yaml.safe_dump(data))
    return str(path)


def up(path: str, target: MeshwrightTarget, directory: Path) -> MeshReport:
    return up_mesh(spec=path, kubeconfig=str(directory / "kubeconfig"), connection=target)


def cacerts(target: MeshwrightTarget, report: MeshReport, cluster: str) -> dict[str, bytes]:
    access = next(c for c in report.provision.clusters if c.name == cluster)
    client = clients.cloud(target).kube(access.endpoint, access.ca_certificate)
    data = kubernetes.client.CoreV1Api(client).read_namespaced_secret("cacerts", NS).data
    return {k: base64.b64decode(v) for k, v in data.items()}


def access(report: MeshReport, cluster: str) -> Any:
    return next(c for c in report.provision.clusters if c.name == cluster)


def test_primary_remote_comes_up_with_one_root_and_a_rerun_changes_nothing(
    sandbox: World,
    target: MeshwrightTarget,
    tmp_path: Path,
    prefect_storage: Path,
) -> None:
    path = offline("sandbox.yaml", tmp_path)
    report = up(path, target, tmp_path)
    recorded, planned = recorded_graph(), planned_graph(load_spec(path))
    assert set(planned) <= set(recorded)  # the plan's steps are the flow's task runs...
    missing_edges = {step: planned[step] - recorded[step] for step in planned}
    assert {step: edges for step, edges in missing_edges.items() if edges} == {}  # ...and edges
    assert sorted((r.cluster, r.name, r.revision) for r in report.releases) == [
        ("central", "istio-base", 1),
        ("central", "istio-eastwestgateway", 1),
        ("central", "istiod-1-30-3", 1),
        ("east", "istio-base", 1),
        ("east", "istiod-1-30-3", 1),
        ("west", "istio-base", 1),
        ("west", "istiod-1-30-3", 1),
    ]
    assert {c.chart: c.version for c in report.charts} == {
        "base": "1.30.3",
        "istiod": "1.30.3",
        "gateway": "1.30.3",
    }
    stored: Any = Secret.load("meshwright-bookinfo-mesh-root-ca")
    root_pem = stored.get()["cert"].encode()
    assert pki.fingerprint(root_pem) == report.root.fingerprint
    for cluster in ("central", "west", "east"):
        files = cacerts(target, report, cluster)
        assert files["root-cert.pem"] == root_pem
        pki.verify_issued(files["ca-cert.pem"], root_pem)
    address = report.gateways["central"]
    slice_ = get(target, access(report, "west"), "endpointslice", "istiod-1-30-3", namespace=NS)
    assert slice_.endpoints[0].addresses == [address]
    assert sorted((r.source, r.primary, r.action) for r in report.remote_secrets) == [
        ("east", "central", "created"),
        ("west", "central", "created"),
    ]
    assert sorted(b.cluster for b in report.bookinfo) == ["central", "east", "west"]
    proof = report.verification
    assert proof is not None
    assert proof.ok
    assert proof.traffic is not None
    assert set(proof.traffic.served) == {"central", "west"}  # reviews v1/v2 in central, v3 in west

    shown = {c["name"]: c["releases"] for c in mesh_status(load_spec(path), target)["clusters"]}
    assert {(r["name"], r["revision"]) for r in shown["west"]} == {
        ("istio-base", "1"),
        ("istiod-1-30-3", "1"),
    }
    assert {r["app_version"] for r in shown["central"]} == {"1.30.3"}

    again = up(path, target, tmp_path)
    assert {(r.cluster, r.name, r.revision, r.action) for r in again.releases} == {
        (r.cluster, r.name, 1, "unchanged") for r in report.releases
    }
    assert again.root.fingerprint == report.root.fingerprint
    assert {c.action for c in again.cacerts} == {"kept"}

    key_line = stored.get()["key"].splitlines()[5]
    for file in prefect_storage.rglob("*"):
        if file.is_file():
            content = file.read_bytes()
            assert b"PRIVATE KEY" not in content, file
            assert key_line.encode() not in content, file


def test_multi_primary_multi_network_labels_networks_and_crosses_them(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    report = up(offline("multi-primary.yaml", tmp_path), target, tmp_path)
    for cluster, network in (("alpha", "net-a"), ("beta", "net-b")):
        where = access(report, cluster)
        assert get(target, where, "namespace", NS).metadata.labels["topology.istio.io/network"] == network
        gateway = get(target, where, "service", "istio-eastwestgateway", namespace=NS)
        assert gateway.metadata.labels["topology.istio.io/network"] == network
        env = (
            get(target, where, "deployment", "istiod-1-30-3", namespace=NS)
            .spec.template.spec.containers[0]
            .env
        )
        assert {e.name: e.value for e in env}["CLUSTER_ID"] == cluster
        assert report.exposed[cluster] == ["Gateway/cross-network-gateway"]
    # Each network's gateway has its own address, and every one stays on this machine.
    assert sorted(report.gateways) == ["alpha", "beta"]
    assert len(set(report.gateways.values())) == 2
    assert all(ipaddress.ip_address(a).is_loopback for a in report.gateways.values())


def test_primary_remote_across_networks_gives_the_remote_its_own_gateway(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    clusters = [
        {"name": "hub", "location": "us-central1-a", "network": "net-a"},
        {"name": "edge", "location": "europe-west4-a", "network": "net-b", "primary": "hub"},
    ]
    report = up(
        offline("sandbox.yaml", tmp_path, name="prmn", clusters=clusters, bookinfo=None), target, tmp_path
    )
    assert report.exposed["hub"] == [
        "Gateway/istiod-gateway",
        "VirtualService/istiod-vs",
        "Gateway/cross-network-gateway",
    ]
    edge = access(report, "edge")
    namespace = get(target, edge, "namespace", NS).metadata
    assert namespace.labels["topology.istio.io/network"] == "net-b"
    assert namespace.annotations["topology.istio.io/controlPlaneClusters"] == "hub"
    webhook = get(target, edge, "webhook", "istio-sidecar-injector-1-30-3")
    assert {w.client_config.service.path for w in webhook.webhooks} == {"/inject/cluster/edge/net/net-b"}
    gateway = get(target, edge, "service", "istio-eastwestgateway", namespace=NS)
    assert gateway.metadata.labels["topology.istio.io/network"] == "net-b"


def test_charts_that_cannot_be_fetched_fail_before_anything_is_created(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    path = offline(
        "sandbox.yaml", tmp_path, istio={"version": "1.30.3", "charts": "http://127.0.0.1:9/charts"}
    )
    with pytest.raises(
        NotFound, match=r"^preflight: charts cannot be fetched from http://127.0.0.1:9/charts: .*bundled"
    ):
        up(path, target, tmp_path)
    assert list_clusters(target, "demo-project", step="test") == []
    assert not (tmp_path / ".meshwright").exists()


def test_a_failing_release_fails_the_run_naming_cluster_and_step_and_stops_only_what_needs_it(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    charts = tmp_path / "charts"
    shutil.copytree(BUNDLED_CHARTS, charts)
    (charts / "istiod" / "templates" / "zz-broken.yaml").write_text(
        '{{- if eq .Values.global.multiCluster.clusterName "central" }}{{ fail "central refuses" }}{{- end }}\n'
    )
    path = offline("multi-primary.yaml", tmp_path, istio={"charts": str(charts)})
    data = yaml.safe_load(Path(path).read_text())
    data["clusters"][0]["name"] = "central"
    data["bookinfo"] = None
    Path(path).write_text(yaml.safe_dump({k: v for k, v in data.items() if v is not None}))
    with pytest.raises(InvalidRequest, match=r"^install_istiod \[central\]: .*central refuses") as raised:
        up(path, target, tmp_path)
    assert "not run" not in str(raised.value)
    beta = locate_clusters(load_spec(path), target=target)["beta"]
    assert beta is not None
    assert {r["name"] for r in helm_releases(target, beta)} == {
        "istio-base",
        "istiod-1-30-3",
        "istio-eastwestgateway",
    }
