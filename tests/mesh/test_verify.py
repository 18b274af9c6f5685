"""verify against the sandbox: clusterz through the service proxy, each breakage named, the healthy mesh passes."""

from __future__ import annotations

import base64

import kubernetes.client
import pytest
import yaml

from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.models import ClusterAccess
from meshwright.pki import new_root_ca
from meshwright.remote_secrets import pairs
from meshwright.sandbox.mesh.clusterz import for_fleet
from meshwright.sandbox.world import World
from meshwright.spec import MeshSpec
from meshwright.verify import VerifyReport, check
from tasks.remote_secrets import exchange_remote_secret
from tasks.verify import _unusable_ca, locate_clusters, observe_control_plane
from tests.mesh.support import NS, REMOTE_ISTIOD, core, kube, set_root
from tests.support import wait_for


def verify(spec: MeshSpec, target: MeshwrightTarget) -> VerifyReport:
    """What the verify flow composes, with the task bodies run in line."""
    found = locate_clusters.fn(spec, target=target)
    seen = {
        name: observe_control_plane.fn(spec, access, found, target=target, settle=5.0)
        for name, access in found.items()
        if access is not None
    }
    return check(spec, {n: seen[n] for n in seen})


@pytest.fixture
def meshed(
    sandbox: World, target: MeshwrightTarget, spec: MeshSpec, clusters: dict[str, ClusterAccess]
) -> dict[str, ClusterAccess]:
    """Remote secrets for every pair, and istiod's monitoring port behind the API's service proxy."""
    sandbox.fleet.service_proxy = for_fleet(sandbox.fleet)
    for source, primary in pairs(spec):
        exchange_remote_secret.fn(clusters[source], clusters[primary], target=target)
    return clusters


def edit_kubeconfig(target: MeshwrightTarget, primary: ClusterAccess, source: str, change: dict) -> None:
    name = f"istio-remote-secret-{source}"
    secret = core(target, primary).read_namespaced_secret(name, NS)
    config = yaml.safe_load(base64.b64decode(secret.data[source]))
    for section, values in change.items():
        config[section][0][section[:-1]].update(values)
    secret.data[source] = base64.b64encode(yaml.safe_dump(config).encode()).decode()
    core(target, primary).replace_namespaced_secret(name, NS, secret)


def test_healthy_mesh_passes(
    target: MeshwrightTarget, spec: MeshSpec, meshed: dict[str, ClusterAccess]
) -> None:
    report = verify(spec, target)
    assert report.problems == []
    assert {t.primary: t.clusters for t in report.tables} == {
        "central": {"east": "synced", "west": "synced"},
        "east": {"central": "synced", "west": "synced"},
    }


def test_missing_remote_secret_is_named(
    target: MeshwrightTarget, spec: MeshSpec, meshed: dict[str, ClusterAccess]
) -> None:
    core(target, meshed["central"]).delete_namespaced_secret("istio-remote-secret-west", NS)
    assert verify(spec, target).problems == [
        "central does not see west: not listed (remote secret istio-remote-secret-west: missing)"
    ]


def test_garbage_token_is_named(
    target: MeshwrightTarget, spec: MeshSpec, meshed: dict[str, ClusterAccess]
) -> None:
    edit_kubeconfig(target, meshed["east"], "central", {"users": {"token": "garbage"}})
    (problem,) = verify(spec, target).problems
    assert problem.startswith("east does not see central: ")
    assert problem.endswith("(remote secret istio-remote-secret-central: token rejected)")
    assert "garbage" not in problem


def test_an_exec_plugin_is_named_not_taken_for_a_rejected_token(
    target: MeshwrightTarget, spec: MeshSpec, meshed: dict[str, ClusterAccess]
) -> None:
    name, api = "istio-remote-secret-central", core(target, meshed["east"])
    secret = api.read_namespaced_secret(name, NS)
    config = yaml.safe_load(base64.b64decode(secret.data["central"]))
    config["users"][0]["user"] = {
        "exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "gke-gcloud-auth-plugin"}
    }
    secret.data["central"] = base64.b64encode(yaml.safe_dump(config).encode()).decode()
    api.replace_namespaced_secret(name, NS, secret)
    assert verify(spec, target).problems == [
        "east does not see central: not listed (remote secret istio-remote-secret-central: istiod refuses a "
        "user that runs the exec plugin gke-gcloud-auth-plugin (exec is not allowed); use a token)"
    ]


def test_wrong_ca_data_is_named(
    target: MeshwrightTarget, spec: MeshSpec, meshed: dict[str, ClusterAccess]
) -> None:
    other_ca = base64.b64encode(
        new_root_ca(common_name="elsewhere", organization="x", key="ec").cert_pem
    ).decode()
    edit_kubeconfig(target, meshed["central"], "east", {"clusters": {"certificate-authority-data": other_ca}})
    (problem,) = verify(spec, target).problems
    assert problem.startswith("central does not see east: ")
    assert problem.endswith(
        f"(remote secret istio-remote-secret-east: CA data does not verify https://{meshed['east'].endpoint})"
    )


def test_deleted_remote_cluster_is_named_by_every_primary(
    target: MeshwrightTarget, spec: MeshSpec, meshed: dict[str, ClusterAccess]
) -> None:
    west = meshed["west"]
    clients.cloud(target).container.delete_cluster(
        name=f"projects/{spec.project}/locations/{west.location}/clusters/west"
    )
    wait_for(lambda: locate_clusters.fn(spec, target=target)["west"] is None, what="west deleted")
    problems = verify(spec, target).problems
    assert "west: the cluster does not exist" not in problems  # verify() skips it; the flow reports it
    reach = f"cannot reach https://{west.endpoint}"
    assert [p for p in problems if "west" in p] == [
        f"central does not see west: syncing (remote secret istio-remote-secret-west: {reach})",
        f"east does not see west: syncing (remote secret istio-remote-secret-west: {reach})",
    ]


def test_a_primary_with_a_different_root_is_named(
    target: MeshwrightTarget, spec: MeshSpec, meshed: dict[str, ClusterAccess]
) -> None:
    set_root(
        target, meshed["east"], new_root_ca(common_name="Other Root", organization="Istio", key="ec").cert_pem
    )
    (problem,) = verify(spec, target).problems
    assert problem.startswith("east: cacerts root ")
    assert "differs from the mesh's root" in problem


def test_remote_istiod_pointing_elsewhere_is_named(
    target: MeshwrightTarget, spec: MeshSpec, meshed: dict[str, ClusterAccess]
) -> None:
    discovery = kubernetes.client.DiscoveryV1Api(kube(target, meshed["west"]))
    endpoint_slice = discovery.read_namespaced_endpoint_slice("istiod-remote", NS)
    endpoint_slice.endpoints[0].addresses = ["198.51.100.9"]
    discovery.replace_namespaced_endpoint_slice("istiod-remote", NS, endpoint_slice)
    (problem,) = verify(spec, target).problems
    assert problem.startswith(
        "west: Service istiod points to 198.51.100.9, not to central's east-west gateway "
    )


def test_remote_istiod_behind_v1_endpoints_is_followed(
    target: MeshwrightTarget, spec: MeshSpec, meshed: dict[str, ClusterAccess]
) -> None:
    discovery = kubernetes.client.DiscoveryV1Api(kube(target, meshed["west"]))
    address = discovery.read_namespaced_endpoint_slice("istiod-remote", NS).endpoints[0].addresses[0]
    discovery.delete_namespaced_endpoint_slice("istiod-remote", NS)
    core(target, meshed["west"]).create_namespaced_endpoints(
        NS,
        {
            "metadata": {"name": REMOTE_ISTIOD},
            "subsets": [{"addresses": [{"ip": address}], "ports": [{"port": 15012}]}],
        },
    )
    assert verify(spec, target).problems == []


@pytest.mark.parametrize(
    ("ca", "reason"),
    [
        ("not base64!", "CA data is not base64"),
        (base64.b64encode(b"junk").decode(), "CA data is not a PEM certificate"),
    ],
)
def test_unusable_ca_data_is_named_before_any_request(ca: str, reason: str) -> None:
    assert _unusable_ca(ca) == reason
