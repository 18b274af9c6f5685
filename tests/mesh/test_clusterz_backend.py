"""istiod's 15014 over the fleet's object stores (the service-proxy backend: a remote caller; the port-forward
backend: a local one), and the real HTTPS probe, without the API server in between."""

from __future__ import annotations

import base64
import json

import pytest

from meshwright.clients import MeshwrightTarget
from meshwright.models import ClusterAccess
from meshwright.sandbox.http import Request
from meshwright.sandbox.mesh import forward, probe
from meshwright.sandbox.mesh.clusterz import ClusterzProxy, for_fleet
from meshwright.sandbox.mesh.istiod import IstiodModel, RemoteConfig
from meshwright.sandbox.world import World
from tasks.remote_secrets import exchange_remote_secret
from tests.mesh.support import NS, core, sandbox_id


def get(path: str = "/debug/clusterz", query: dict[str, str] | None = None, method: str = "GET") -> Request:
    return Request(method=method, path=path, query=query or {}, headers={}, body=b"")


def local(backend: ClusterzProxy, sandbox: World, cluster: str, path: str) -> tuple[int, bytes]:
    """GET `path` as a caller on istiod's loopback (what a port-forward is): status and body."""
    cid = sandbox_id(sandbox, cluster)
    pods = sandbox.fleet.running_apis[cid].cluster.store.list("/pods", NS)
    pod = next(p["metadata"]["name"] for p in pods if p["metadata"]["labels"].get("app") == "istiod")
    stream = forward.beside(backend)(cid, NS, pod, 15014)
    assert stream is not None
    raw = stream.feed(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    assert stream.closed
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def reader_config(
    target: MeshwrightTarget, access: ClusterAccess, *, token: str | None = None
) -> RemoteConfig:
    secret = core(target, access).read_namespaced_secret(
        "istio-reader-service-account-istio-remote-secret-token", NS
    )
    return RemoteConfig(
        server=f"https://{access.endpoint}",
        ca_pem=base64.b64decode(access.ca_certificate),
        token=token or base64.b64decode(secret.data["token"]).decode(),
    )


def test_clusterz_lists_the_config_cluster_then_each_remote(
    sandbox: World, target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    exchange_remote_secret.fn(clusters["west"], clusters["central"], target=target)
    backend = for_fleet(sandbox.fleet)
    status, body = local(backend, sandbox, "central", "/debug/clusterz")
    assert status == 200
    assert json.loads(body) == [
        {"id": "central", "secretName": "", "syncStatus": "synced"},
        {"id": "west", "secretName": "istio-system/istio-remote-secret-west", "syncStatus": "synced"},
    ]
    _, pretty = local(backend, sandbox, "central", "/debug/clusterz?pretty")
    assert b'\n    {\n        "id": "central"' in pretty


def test_through_the_service_proxy_debug_is_401_and_metrics_carry_the_sync_gauge(
    sandbox: World, target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    exchange_remote_secret.fn(clusters["west"], clusters["central"], target=target)
    backend, central = for_fleet(sandbox.fleet), sandbox_id(sandbox, "central")
    for service in ("istiod:15014", "istiod:http-monitoring"):
        refused = backend(central, NS, service, "/debug/clusterz", get())
        assert refused is not None
        assert (refused.status, refused.body) == (401, b"")
    metrics = backend(central, NS, "istiod:15014", "metrics", get("metrics"))
    assert metrics is not None
    assert metrics.status == 200
    assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = metrics.body.decode().splitlines()
    gauge = "istiod_remote_cluster_sync_status"
    assert [line for line in lines if line.startswith(gauge + "{")] == [
        f'{gauge}{{cluster="west",cluster_type="remote",status="{s}"}} {int(s == "synced")}'
        for s in ("closed", "synced", "syncing", "timeout")
    ]
    assert 'istiod_managed_clusters{cluster_type="remote"} 1' in lines
    assert local(backend, sandbox, "central", "/metrics")[1] == metrics.body


def test_only_istiod_monitoring_port_is_served(
    sandbox: World, target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    backend, central = for_fleet(sandbox.fleet), sandbox_id(sandbox, "central")
    assert backend(central, NS, "istiod:15012", "/debug/clusterz", get()) is None
    assert backend(central, NS, "istio-eastwestgateway:15021", "/debug/clusterz", get()) is None
    assert backend(sandbox_id(sandbox, "west"), NS, "istiod:15012", "/debug/clusterz", get()) is None
    unknown = backend(central, NS, "istiod:15014", "/debug/nothing", get())
    assert unknown is not None
    assert (unknown.status, unknown.body) == (404, b"404 page not found\n")


def test_istiod_that_is_not_ready_backs_nothing(
    sandbox: World, target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    store = sandbox.fleet.running_apis[sandbox_id(sandbox, "east")].cluster.store

    class NotReady:
        def list(self, type_key: str, namespace: str | None = None) -> list[dict]:
            items = store.list(type_key, namespace)
            for item in items:
                item.pop("status", None)
            return items

    backend = ClusterzProxy(lambda cid: NotReady())
    assert backend("any", NS, "istiod:15014", "/debug/clusterz", get()) is None


def test_broken_remote_goes_from_syncing_to_timeout(
    sandbox: World, target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    exchange_remote_secret.fn(clusters["west"], clusters["central"], target=target)
    secret = core(target, clusters["central"]).read_namespaced_secret("istio-remote-secret-west", NS)
    kubeconfig = base64.b64decode(secret.data["west"]).decode()
    token = reader_config(target, clusters["west"]).token or ""
    secret.data["west"] = base64.b64encode(kubeconfig.replace(token, "garbage").encode()).decode()
    core(target, clusters["central"]).replace_namespaced_secret("istio-remote-secret-west", NS, secret)
    clock = Clock()
    model = IstiodModel(probe.probe, clock=clock, cache_seconds=0.0)
    backend = ClusterzProxy(for_fleet(sandbox.fleet).lookup, model)

    def west_status() -> str:
        status, body = local(backend, sandbox, "central", "/debug/clusterz")
        assert status == 200
        return {e["id"]: e["syncStatus"] for e in json.loads(body)}["west"]

    assert west_status() == "syncing"
    clock.now += 30.0  # PILOT_REMOTE_CLUSTER_TIMEOUT of the test istiod
    assert west_status() == "timeout"


def test_probe_tells_token_ca_and_reachability_apart(
    target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    west = clusters["west"]
    exchange_remote_secret.fn(west, clusters["central"], target=target)
    good = reader_config(target, west)
    assert probe.probe(good).ok
    assert probe.probe(RemoteConfig(good.server, good.ca_pem, "garbage")).reason == (
        "Unauthorized: the token is not accepted"
    )
    other_ca = base64.b64decode(clusters["central"].ca_certificate)
    assert probe.probe(RemoteConfig(good.server, other_ca, good.token)).reason == (
        "x509: certificate signed by unknown authority"
    )
    assert not probe.probe(RemoteConfig("https://127.0.0.1:1", good.ca_pem, good.token)).ok


@pytest.mark.parametrize("server", ["http://127.0.0.1:1", "not a url"])
def test_probe_refuses_what_is_not_https(server: str) -> None:
    assert not probe.probe(RemoteConfig(server, None, None)).ok
