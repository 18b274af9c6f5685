"""Which clusters an istiod knows endpoints of: those its clusterz lists as synced, mapped back to
sandbox clusters by the server of the remote secret's kubeconfig."""

from __future__ import annotations

import base64

import yaml

from meshwright.sandbox.mesh.istiod import IstiodModel, ProbeResult, RemoteConfig
from meshwright.sandbox.mesh.revisions import ControlPlane
from meshwright.sandbox.mesh.serve import synced_clusters
from tests.dataplane.meshes import healthy, primary_remote


def _secret(source: str, server: str) -> dict[str, object]:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": source, "cluster": {"server": server}}],
        "users": [{"name": source, "user": {"token": "t"}}],
        "contexts": [{"name": source, "context": {"cluster": source, "user": source}}],
        "current-context": source,
    }
    data = {source: base64.b64encode(yaml.safe_dump(kubeconfig).encode()).decode()}
    meta = {
        "name": f"istio-remote-secret-{source}",
        "namespace": "istio-system",
        "labels": {"istio/multiCluster": "true"},
    }
    return {"metadata": meta, "data": data}


def test_synced_remotes_map_to_their_clusters_by_server() -> None:
    mesh, _ = healthy(primary_remote())
    mesh.synced = {}
    secrets = mesh.clusters["central"].objects["/secrets"]
    for source in ("west", "east"):
        secrets.append(_secret(source, str(mesh.clusters[source].endpoint)))
    reachable = {str(mesh.clusters["west"].endpoint)}

    def probe(config: RemoteConfig) -> ProbeResult:
        return ProbeResult(config.server in reachable, "" if config.server in reachable else "refused")

    assert synced_clusters(mesh, IstiodModel(probe)) == {ControlPlane("central"): {"west"}}


def test_a_secret_pointing_at_another_server_syncs_that_server() -> None:
    mesh, _ = healthy(primary_remote())
    mesh.clusters["central"].objects["/secrets"].append(_secret("west", str(mesh.clusters["east"].endpoint)))
    assert synced_clusters(mesh, IstiodModel(lambda c: ProbeResult(True))) == {
        ControlPlane("central"): {"east"}
    }
