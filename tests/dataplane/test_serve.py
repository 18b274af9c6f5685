"""The loopback listeners: a DataPlane over stores (as the World hands them) answers plain HTTP."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

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
