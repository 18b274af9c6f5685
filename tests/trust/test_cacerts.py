"""cacerts in each cluster: an intermediate from the mesh's one root, kept on a rerun, never silently replaced."""

from __future__ import annotations

import base64

import kubernetes.client
import pytest

from meshwright import clients, pki
from meshwright.clients import MeshwrightTarget
from meshwright.errors import Conflict
from meshwright.models import ClusterAccess
from meshwright.sandbox.world import World
from tasks.clusters import create_cluster, wait_cluster
from tasks.istio import prepare_namespace
from tasks.trust import ensure_cacerts, ensure_root_ca
from tests.support import mesh

pytestmark = pytest.mark.usefixtures("meshwright_home")


@pytest.fixture
def cluster(sandbox: World, target: MeshwrightTarget) -> ClusterAccess:
    spec = mesh()
    access = wait_cluster.fn(
        spec, create_cluster.fn(spec, "central", target=target, expires=None), target=target
    )
    prepare_namespace.fn(spec, access, target=target)
    return access


def secret(target: MeshwrightTarget, access: ClusterAccess) -> dict[str, bytes]:
    api = kubernetes.client.CoreV1Api(clients.cloud(target).kube(access.endpoint, access.ca_certificate))
    data = api.read_namespaced_secret("cacerts", "istio-system").data
    return {k: base64.b64decode(v) for k, v in data.items()}


def test_cacerts_holds_an_intermediate_of_the_mesh_root(
    cluster: ClusterAccess, target: MeshwrightTarget
) -> None:
    spec = mesh()
    root = ensure_root_ca.fn(spec)
    result = ensure_cacerts.fn(spec, cluster, root, target=target)
    files = secret(target, cluster)
    assert result.action == "created"
    assert pki.fingerprint(files["root-cert.pem"]) == root.fingerprint
    pki.verify_issued(files["ca-cert.pem"], files["root-cert.pem"])
    assert files["cert-chain.pem"] == files["ca-cert.pem"] + files["root-cert.pem"]
    assert result.intermediate_fingerprint == pki.fingerprint(files["ca-cert.pem"])
    assert "PRIVATE KEY" not in result.model_dump_json()


def test_a_rerun_keeps_the_intermediate(cluster: ClusterAccess, target: MeshwrightTarget) -> None:
    spec = mesh()
    first = ensure_cacerts.fn(spec, cluster, ensure_root_ca.fn(spec), target=target)
    again = ensure_cacerts.fn(spec, cluster, ensure_root_ca.fn(spec), target=target)
    assert again.action == "kept"
    assert again.intermediate_fingerprint == first.intermediate_fingerprint


def test_cacerts_from_another_root_is_refused_not_replaced(
    cluster: ClusterAccess, target: MeshwrightTarget
) -> None:
    spec = mesh()
    foreign = pki.new_root_ca(key="rsa2048")
    api = kubernetes.client.CoreV1Api(clients.cloud(target).kube(cluster.endpoint, cluster.ca_certificate))
    files = pki.cacerts(pki.new_intermediate(foreign, locality="central"), foreign.cert_pem)
    api.create_namespaced_secret(
        "istio-system",
        {
            "metadata": {"name": "cacerts"},
            "data": {k: base64.b64encode(v).decode() for k, v in files.items()},
        },
    )
    with pytest.raises(Conflict, match="another root CA") as raised:
        ensure_cacerts.fn(spec, cluster, ensure_root_ca.fn(spec), target=target)
    assert raised.value.cluster == "central"
    assert secret(target, cluster)["root-cert.pem"] == foreign.cert_pem


def test_a_cluster_added_later_gets_an_intermediate_of_the_same_root(
    cluster: ClusterAccess, target: MeshwrightTarget
) -> None:
    spec = mesh()
    first = ensure_cacerts.fn(spec, cluster, ensure_root_ca.fn(spec), target=target)
    later = wait_cluster.fn(spec, create_cluster.fn(spec, "west", target=target, expires=None), target=target)
    prepare_namespace.fn(spec, later, target=target)
    added = ensure_cacerts.fn(spec, later, ensure_root_ca.fn(spec), target=target)
    files = secret(target, later)
    assert added.root_fingerprint == first.root_fingerprint
    assert added.intermediate_fingerprint != first.intermediate_fingerprint
    assert pki.fingerprint(files["root-cert.pem"]) == first.root_fingerprint
    pki.verify_issued(files["ca-cert.pem"], files["root-cert.pem"])
