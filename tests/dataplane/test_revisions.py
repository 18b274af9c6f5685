"""Two istiod revisions in one mesh, as Istio's canary upgrade runs them: the injector follows the
webhook configurations in the cluster (revisions' and revision tags', rendered by the bundled istiod
chart with the real helm), and the data plane routes for the pods of both revisions while both run
(pure: hand-built snapshots, no HTTP)."""

from __future__ import annotations

import functools
import json
import subprocess
from collections import Counter
from typing import Any

import yaml

from meshwright import helm
from meshwright.sandbox.contract import BUNDLED_CHARTS
from meshwright.sandbox.mesh import injection
from meshwright.sandbox.mesh.dataplane import Mesh
from meshwright.sandbox.mesh.revisions import ControlPlane, revision_of
from tests.dataplane.meshes import healthy, primary_remote
from tests.dataplane.test_routing import served

KEYS = {
    "Deployment": "apps/deployments",
    "Service": "/services",
    "EndpointSlice": "discovery.k8s.io/endpointslices",
    "MutatingWebhookConfiguration": injection.WEBHOOKS_TYPE,
}
READY = {"readyReplicas": 1}


@functools.cache
def _render(*sets: str) -> str:
    args = [helm.executable(), "template", "istiod", str(BUNDLED_CHARTS / "istiod"), "-n", "istio-system"]
    for value in sets:
        args += ["--set", value]
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout


def install(mesh: Mesh, cluster: str, *sets: str) -> None:
    """What `helm install` of the bundled istiod chart with `sets` leaves that the data plane reads
    (its Deployment ready, as the sandbox's controllers make it)."""
    for doc in yaml.safe_load_all(_render(f"global.multiCluster.clusterName={cluster}", *sets)):
        if doc and doc["kind"] in KEYS:
            if doc["kind"] == "Deployment":
                doc["status"] = dict(READY)
            mesh.clusters[cluster].objects.setdefault(KEYS[doc["kind"]], []).append(doc)


def namespace(mesh: Mesh, cluster: str, name: str, labels: dict[str, str]) -> None:
    mesh.clusters[cluster].objects["/namespaces"].append({"metadata": {"name": name, "labels": labels}})


def pod(ns: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": ns, "labels": dict(labels or {"app": "x"})},
        "spec": {"containers": [{"name": "x"}]},
    }


def admitted(mesh: Mesh, cluster: str, created: dict[str, Any]) -> dict[str, Any]:
    assert injection.admit(mesh, cluster, created) is None
    return created


def proxy_image(p: dict[str, Any]) -> str:
    return next(c["image"] for c in p["spec"]["containers"] if c["name"] == "istio-proxy")


def with_canary(*sets: str) -> Mesh:
    """central (the default revision, hand-built) and its remote west, plus revision canary in central."""
    mesh, _ = healthy(primary_remote())
    install(mesh, "central", "revision=canary", "global.tag=1.30.3", *sets)
    return mesh


def test_a_revision_label_is_injected_by_that_revision_which_annotates_the_pod() -> None:
    mesh = with_canary()
    namespace(mesh, "central", "shop", {"istio.io/rev": "canary"})
    injected = admitted(mesh, "central", pod("shop"))
    annotations = injected["metadata"]["annotations"]
    assert annotations["istio.io/rev"] == "canary"  # files/injection-template.yaml
    assert json.loads(annotations["sidecar.istio.io/status"])["revision"] == "canary"
    assert "istio.io/rev" not in injected["metadata"]["labels"]  # webhook.go: the label is left alone
    assert proxy_image(injected) == "docker.io/istio/proxyv2:1.30.3"
    legacy = admitted(mesh, "central", pod("bookinfo"))  # istio-injection=enabled: the default revision
    assert revision_of(legacy) == "default"


def test_a_revision_tag_injects_with_the_revision_it_points_at() -> None:
    mesh = with_canary("revisionTags={prod}")
    namespace(mesh, "central", "shop", {"istio.io/rev": "prod"})
    assert revision_of(admitted(mesh, "central", pod("shop"))) == "canary"
    namespace(mesh, "central", "plain", {})
    tagged = admitted(mesh, "central", pod("plain", {"app": "x", "istio.io/rev": "prod"}))
    assert (revision_of(tagged), tagged["metadata"]["labels"]["istio.io/rev"]) == ("canary", "prod")


def test_the_default_tag_takes_istio_injection_namespaces_once_the_old_default_is_gone() -> None:
    mesh = with_canary("revisionTags={default}")
    webhooks = mesh.clusters["central"].objects[injection.WEBHOOKS_TYPE]
    webhooks[:] = [w for w in webhooks if w["metadata"]["name"] != "istio-sidecar-injector"]
    assert revision_of(admitted(mesh, "central", pod("bookinfo"))) == "canary"


def test_a_label_no_webhook_selects_gets_no_proxy_and_a_gone_revision_refuses_pods() -> None:
    mesh = with_canary()
    namespace(mesh, "central", "ghost", {"istio.io/rev": "nonexistent"})
    assert "annotations" not in admitted(mesh, "central", pod("ghost"))["metadata"]
    namespace(mesh, "central", "shop", {"istio.io/rev": "canary"})
    deployments = mesh.clusters["central"].objects["apps/deployments"]
    deployments[:] = [d for d in deployments if d["metadata"]["name"] != "istiod-canary"]
    refused = injection.admit(mesh, "central", pod("shop"))
    assert refused is not None
    assert 'failed calling webhook "rev.namespace.sidecar-injector.istio.io"' in refused
    assert "https://istiod-canary.istio-system.svc:443/inject?timeout=10s" in refused


def _eastwest_address(mesh: Mesh, cluster: str) -> str:
    for svc in mesh.clusters[cluster].list("/services", "istio-system"):
        if svc["metadata"]["name"] == "istio-eastwestgateway":
            return str(svc["status"]["loadBalancer"]["ingress"][0]["ip"])
    raise AssertionError(f"{cluster} has no east-west gateway")


def _expose_revision(mesh: Mesh, revision: str) -> None:
    """samples/multicluster/expose-istiod-rev.yaml.tmpl's VirtualService, applied in central."""
    host = f"istiod-{revision}.istio-system.svc"
    routes = [
        {
            "match": [{"port": port, "sniHosts": [host, f"{host}.cluster.local"]}],
            "route": [{"destination": {"host": f"{host}.cluster.local", "port": {"number": target}}}],
        }
        for port, target in ((15012, 15012), (15017, 443))
    ]
    vs = {
        "metadata": {"name": f"istiod-vs-{revision}", "namespace": "istio-system"},
        "spec": {"hosts": ["*"], "gateways": ["istiod-gateway"], "tls": routes},
    }
    mesh.clusters["central"].objects["networking.istio.io/virtualservices"].append(vs)


def test_a_remote_is_injected_by_the_revision_its_primarys_gateway_routes_the_sni_to() -> None:
    mesh = with_canary()
    address = _eastwest_address(mesh, "central")
    install(
        mesh,
        "west",
        "profile=remote",
        "revision=canary",
        f"global.remotePilotAddress={address}",
        "istiodRemote.injectionPath=/inject/cluster/west/net/default",
    )
    namespace(mesh, "west", "shop", {"istio.io/rev": "canary"})
    # expose-istiod.yaml alone routes every SNI to istiod: the default revision answers
    assert revision_of(admitted(mesh, "west", pod("shop"))) == "default"
    _expose_revision(mesh, "canary")
    assert revision_of(admitted(mesh, "west", pod("shop"))) == "canary"
    assert mesh.control_plane("west", "canary") == ControlPlane("central", "canary")


def _move(mesh: Mesh, cluster: str, prefix: str, revision: str) -> None:
    """Pods re-created under another revision (a rollout restart after relabelling the namespace)."""
    for p in mesh.clusters[cluster].objects["/pods"]:
        if p["metadata"]["name"].startswith(prefix):
            p["metadata"].setdefault("annotations", {})["istio.io/rev"] = revision


def test_traffic_reaches_the_pods_of_both_revisions_while_both_run() -> None:
    mesh, address = healthy(primary_remote())
    install(mesh, "central", "revision=canary")
    mesh.synced[ControlPlane("central", "canary")] = set(mesh.synced[ControlPlane("central")])
    _move(mesh, "central", "reviews-v2", "canary")
    _move(mesh, "central", "productpage", "canary")
    assert served(mesh, address) == Counter({"central/v1": 4, "central/v2": 4, "west/v3": 4})
    deployments = mesh.clusters["central"].objects["apps/deployments"]
    deployments[:] = [d for d in deployments if d["metadata"]["name"] != "istiod-canary"]
    assert served(mesh, address) == Counter({"503": 12})  # productpage's sidecar lost its istiod


def test_a_revision_that_has_not_synced_a_remote_does_not_route_to_it() -> None:
    mesh, address = healthy(primary_remote())
    install(mesh, "central", "revision=canary")
    mesh.synced[ControlPlane("central", "canary")] = set()  # its clusterz: west still syncing
    _move(mesh, "central", "productpage", "canary")
    assert served(mesh, address) == Counter({"central/v1": 6, "central/v2": 6})
