"""A sandbox that a test may restart, and a raw HTTPS client for requests no real client would send."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from meshwright.sandbox.faults import Faults
from meshwright.sandbox.kube.fleet import operator_token
from meshwright.sandbox.world import World
from tests.support import FAST, gke_client, kube_client, running_cluster


@dataclass
class Sandbox:
    """One state directory; `restart()` stops the world and starts a new one on the same files."""

    root: Path
    world: World = field(init=False)

    def __post_init__(self) -> None:
        self.world = World(self.root, latency=FAST, faults=Faults()).start()

    def restart(self) -> World:
        self.world.stop()
        self.world = World(self.root, latency=FAST, faults=Faults()).start()
        return self.world

    def cluster(self, name: str = "central") -> Any:
        return gke_client(self.world).get_cluster(
            name=f"projects/demo-project/locations/us-central1-a/clusters/{name}"
        )

    def kube(self, name: str = "central") -> kubernetes.client.ApiClient:
        return kube_client(self.world, self.cluster(name))

    def raw(self, name: str = "central") -> RawKube:
        cluster = self.cluster(name)
        ca = base64.b64decode(cluster.master_auth.cluster_ca_certificate).decode()
        return RawKube(int(cluster.endpoint.rsplit(":", 1)[1]), ca, operator_token(self.world.layout))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "state")
    running_cluster(gke_client(box.world), "central")
    yield box
    box.world.stop()


@dataclass
class RawKube:
    """Requests sent byte for byte as written (path as is, any header), answered as JSON."""

    port: int
    ca_pem: str
    token: str

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem)

    def connection(self, timeout: float = 10) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(), timeout=timeout)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        raw: bytes | None = None,
        auth: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        headers = {"Content-Type": content_type, "Authorization": auth or f"Bearer {self.token}"}
        conn = self.connection()
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        try:
            answer = json.loads(payload) if payload else {}
        except ValueError:
            answer = {"text": payload.decode(errors="replace")}
        return response.status, answer


def config_map(name: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **fields}


def deployment(name: str, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "nginx:1"}]},
            },
            **spec,
        },
    }


def service(name: str, *ports: dict[str, Any], kind: str = "ClusterIP") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": kind, "selector": {"app": name}, "ports": list(ports)},
    }
