"""The loopback listeners: a DataPlane over stores (as the World hands them) answers plain HTTP."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import socket
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshwright.sandbox.kube.store.objects import ObjectStore
from meshwright.sandbox.mesh import gateway
from meshwright.sandbox.mesh.dataplane import Mesh
from meshwright.sandbox.mesh.istiod import IstiodModel, ProbeResult
from meshwright.sandbox.mesh.serve import DataPlane, Source
from tests.dataplane.meshes import healthy, primary_remote
from tests.dataplane.test_synced import _secret


class Store:
    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects

    def list(self, type_key: str, namespace: str | None = None) -> list[dict[str, Any]]:
        items = self.objects.get(type_key, [])
        return [o for o in items if namespace is None or o["metadata"].get("namespace") == namespace]


class Sources:
    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh

    def clusters(self, *, locked: bool = True) -> list[Source]:
        return [
            Source(f"id-{n}", c.node, c.endpoint, Store(c.objects)) for n, c in self.mesh.clusters.items()
        ]

    def firewalls(self) -> list[dict[str, Any]]:
        return self.mesh.firewalls


@pytest.fixture
def plane() -> Iterator[tuple[DataPlane, str]]:
    mesh, address = healthy(primary_remote(), lb_base="127.251.0")  # apart from any sandbox's addresses
    for source in ("west", "east"):
        mesh.clusters["central"].objects["/secrets"].append(
            _secret(source, str(mesh.clusters[source].endpoint))
        )
    dp = DataPlane(Sources(mesh), model=IstiodModel(lambda config: ProbeResult(True)))
    dp.reconcile()
    yield dp, address
    dp.stop()


def _open(request: urllib.request.Request | str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        return int(response.status), response.read()


def test_the_ingress_address_answers_plain_http(plane: tuple[DataPlane, str]) -> None:
    dp, address = plane
    assert (address, 80) in dp.wanted()
    clusters = set()
    for _ in range(3):
        status, body = _open(f"http://{address}/api/v1/products/0/reviews")
        assert status == 200
        clusters.add(json.loads(body)["clustername"])
    assert clusters == {"central", "west"}


def test_head_answers_without_a_body(plane: tuple[DataPlane, str]) -> None:
    _, address = plane
    assert _open(urllib.request.Request(f"http://{address}/productpage", method="HEAD")) == (200, b"")


def test_a_pod_created_in_a_known_cluster_is_injected(plane: tuple[DataPlane, str]) -> None:
    dp, _ = plane
    pod = {
        "metadata": {"name": "p", "namespace": "bookinfo", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "x"}]},
    }
    assert dp.admit_pod("id-west", pod) is None
    assert [c["name"] for c in pod["spec"]["containers"]] == ["x", "istio-proxy"]
    assert dp.admit_pod("unknown", {"metadata": {"name": "q"}}) is None


def _answers(address: str, raw: bytes, *, wait: float = 1.0) -> list[bytes]:
    """The status lines a gateway sends back for `raw` on one connection, within `wait` seconds."""
    with socket.create_connection((address, 80), timeout=wait) as sock:
        sock.sendall(raw)
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            while chunk := sock.recv(65536):
                received += chunk
    return re.findall(rb"HTTP/1\.1 \d{3} [^\r]*", received)


def test_a_get_with_a_body_gets_one_answer(plane: tuple[DataPlane, str]) -> None:
    _, address = plane
    body = b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"  # a body that looks like a request
    raw = b"GET /productpage HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    assert _answers(address, raw) == [b"HTTP/1.1 200 OK"]


def test_a_product_id_of_5000_digits_is_gunicorns_400_not_a_dropped_connection(
    plane: tuple[DataPlane, str],
) -> None:
    _, address = plane
    with pytest.raises(urllib.error.HTTPError) as answered:
        _open(f"http://{address}/api/v1/products/{'9' * 5000}")
    assert answered.value.code == 400
    assert b"Request Line is too large (5030 &gt; 4094)" in answered.value.read()


def test_clients_that_leave_early_leave_no_traceback(
    plane: tuple[DataPlane, str], capfd: pytest.CaptureFixture[str]
) -> None:
    _, address = plane
    for _ in range(20):
        sock = socket.create_connection((address, 80))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset on close
        sock.sendall(b"GET /productpage HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.close()
    time.sleep(0.5)
    assert "Traceback" not in capfd.readouterr().err


def test_gateway_listeners_cap_connections_and_close_idle_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway, "MAX_CONNECTIONS", 5)
    monkeypatch.setattr(gateway, "IDLE_TIMEOUT", 0.5)
    listeners, key = gateway.Listeners(lambda *_: (200, b"ok", "text/plain")), ("127.251.9.1", 18080)
    listeners.sync({key})
    try:
        idle = [socket.create_connection(key, timeout=3) for _ in range(5)]
        time.sleep(0.1)
        with socket.create_connection(key, timeout=3) as over:
            assert over.recv(1) == b""  # over the cap: closed unanswered, no thread spent on it
        # idle past the gateway's 0.5 s: closed by it (a socket still open would time out after 3 s)
        assert [s.recv(1) for s in idle] == [b""] * 5
    finally:
        listeners.close()


def test_a_service_with_1000_ports_gets_100_listeners_and_they_close_with_it(
    plane: tuple[DataPlane, str], caplog: pytest.LogCaptureFixture
) -> None:
    dp, _ = plane
    services = dp.sources.mesh.clusters["central"].objects["/services"]  # type: ignore[attr-defined]
    wide = {
        "metadata": {"name": "wide", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 20000 + i} for i in range(1000)]},
        "status": {"loadBalancer": {"ingress": [{"ip": "127.251.9.2"}]}},
    }
    services.append(wide)
    dp.reconcile()
    dp.reconcile()
    assert len([k for k in dp.listeners.open if k[0] == "127.251.9.2"]) == 100
    assert "900 of the 1000 ports of LoadBalancer Service central/default/wide get no listener" in caplog.text
    services.remove(wide)
    dp.reconcile()
    assert [k for k in dp.listeners.open if k[0] == "127.251.9.2"] == []


class VersionedStore(Store):
    """A store with a resourceVersion, as the fleet's are; counts its lists."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        super().__init__(objects)
        self.rv, self.lists = 1, 0

    def list(self, type_key: str, namespace: str | None = None) -> list[dict[str, Any]]:
        self.lists += 1
        return super().list(type_key, namespace)


def test_listeners_follow_a_load_balancer_address_only_once_the_store_changed() -> None:
    mesh, address = healthy(primary_remote(), lb_base="127.251.1")
    stores = {n: VersionedStore(c.objects) for n, c in mesh.clusters.items()}

    class Versioned(Sources):
        def clusters(self, *, locked: bool = True) -> list[Source]:
            return [Source(f"id-{n}", c.node, c.endpoint, stores[n]) for n, c in self.mesh.clusters.items()]

    dp = DataPlane(Versioned(mesh), model=IstiodModel(lambda config: ProbeResult(True)))
    dp.refresh()
    assert (address, 80) in dp.wanted()
    before = {n: s.lists for n, s in stores.items()}
    assert (address, 80) in dp.wanted()
    assert {n: s.lists for n, s in stores.items()} == before  # nothing changed: nothing read again
    gateway_svc = next(
        s for c in mesh.clusters.values() for s in c.objects["/services"] if address in str(s.get("status"))
    )
    gateway_svc["status"]["loadBalancer"]["ingress"] = [{"ip": "127.251.1.99"}]
    assert (address, 80) in dp.wanted()  # the store's resourceVersion has not moved yet
    for store in stores.values():
        store.rv += 1
    wanted = dp.wanted()
    assert ("127.251.1.99", 80) in wanted
    assert (address, 80) not in wanted


def test_the_admission_hook_reads_again_only_the_types_that_changed(tmp_path: Path) -> None:
    mesh, _ = healthy(primary_remote(), lb_base="127.251.2")
    stores = {}
    for name, cluster in mesh.clusters.items():
        stores[name] = ObjectStore(tmp_path / name)
        for type_key, items in cluster.objects.items():
            for obj in items:
                meta = obj["metadata"]
                stores[name].put((type_key, meta.get("namespace", ""), meta["name"]), copy.deepcopy(obj))

    class Stored(Sources):
        def clusters(self, *, locked: bool = True) -> list[Source]:
            return [Source(f"id-{n}", c.node, c.endpoint, stores[n]) for n, c in self.mesh.clusters.items()]

    dp = DataPlane(Stored(mesh), model=IstiodModel(lambda config: ProbeResult(True)))
    dp.refresh()
    before = dp._mesh([]).clusters["west"].objects
    pod = {"metadata": {"name": "late", "namespace": "bookinfo", "labels": {"app": "late"}}, "spec": {}}
    stores["west"].put(("/pods", "bookinfo", "late"), pod)
    after = dp._mesh([]).clusters["west"].objects
    assert "late" in [p["metadata"]["name"] for p in after["/pods"]]
    assert after["/services"] is before["/services"]  # unchanged: not copied again
    assert stores["west"].delete(("/services", "bookinfo", "reviews")) is not None
    again = dp._mesh([]).clusters["west"].objects
    assert "reviews" not in [s["metadata"]["name"] for s in again["/services"]]
    assert again["/pods"] is after["/pods"]
    for store in stores.values():
        store.close()
