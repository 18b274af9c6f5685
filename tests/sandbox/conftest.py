"""An in-process sandbox world per test (fast latencies) and real clients pointed at it."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, container_v1

from meshwright.sandbox import store
from meshwright.sandbox.faults import Faults
from meshwright.sandbox.kube.fleet import operator_token
from meshwright.sandbox.settings import Latency, Layout
from meshwright.sandbox.world import World

FAST = Latency(create=0.3, delete=0.2, pending=0.05, firewall=0.0, rollout=0.1, loadbalancer=0.1)
PROJECT = "demo-project"
ZONE = "us-central1-a"
PARENT = f"projects/{PROJECT}/locations/{ZONE}"


def register(w: World) -> None:
    """Make an in-process world findable like a daemon (no pid: nothing may signal the test process)."""
    store.write_json(
        Layout(w.layout.root).daemon, {"port": w.server.port if w.server else 0, "gcp": w.base_url()}
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "state", latency=FAST, faults=Faults()).start()
    yield w
    w.stop()


def gke_client(w: World) -> container_v1.ClusterManagerClient:
    return container_v1.ClusterManagerClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=w.base_url()),
    )


def firewalls_client(w: World) -> compute_v1.FirewallsClient:
    return compute_v1.FirewallsClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=w.base_url()),
    )


@pytest.fixture
def gke(world: World) -> container_v1.ClusterManagerClient:
    return gke_client(world)


@pytest.fixture
def firewalls(world: World) -> compute_v1.FirewallsClient:
    return firewalls_client(world)


def new_cluster(name: str, **kw: Any) -> container_v1.Cluster:
    pool = container_v1.NodePool(
        name="default-pool",
        initial_node_count=2,
        config=container_v1.NodeConfig(machine_type="e2-standard-4"),
    )
    return container_v1.Cluster(name=name, node_pools=[pool], resource_labels={"meshwright-mesh": "m"}, **kw)


def wait_done(
    client: container_v1.ClusterManagerClient, parent: str, op_name: str, timeout: float = 10
) -> container_v1.Operation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = client.get_operation(name=f"{parent}/operations/{op_name}")
        if op.status == container_v1.Operation.Status.DONE:
            return op
        time.sleep(0.05)
    raise AssertionError(f"operation {op_name} not DONE after {timeout}s")


def running_cluster(
    client: container_v1.ClusterManagerClient, name: str, parent: str = PARENT
) -> container_v1.Cluster:
    op = client.create_cluster(parent=parent, cluster=new_cluster(name))
    wait_done(client, parent, op.name)
    return client.get_cluster(name=f"{parent}/clusters/{name}")


def kube_client(
    world: World, cluster: container_v1.Cluster, token: str | None = None
) -> kubernetes.client.ApiClient:
    config = kubernetes.client.Configuration()
    config.host = f"https://{cluster.endpoint}"
    ca = world.layout.root / "test-ca" / f"{cluster.name}.crt"
    ca.parent.mkdir(exist_ok=True)
    ca.write_bytes(base64.b64decode(cluster.master_auth.cluster_ca_certificate))
    config.ssl_ca_cert = str(ca)
    config.api_key["authorization"] = f"Bearer {token if token is not None else operator_token(world.layout)}"
    return kubernetes.client.ApiClient(config)


@pytest.fixture
def central(world: World, gke: container_v1.ClusterManagerClient) -> container_v1.Cluster:
    return running_cluster(gke, "central")


@pytest.fixture
def kube(world: World, central: container_v1.Cluster) -> kubernetes.client.ApiClient:
    return kube_client(world, central)


def call(
    w: World, method: str, path: str, body: Any = None, *, raw: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    """One request with http.client, the path sent as given (like `curl --path-as-is`)."""
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    conn = http.client.HTTPConnection("127.0.0.1", w.server.port if w.server else 0, timeout=10)
    try:
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    return response.status, json.loads(payload) if payload else {}


def send_bytes(port: int, data: bytes, *, timeout: float = 10) -> bytes:
    """Write raw bytes to a listener, half-close, and read everything it answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def statuses(answer: bytes) -> list[int]:
    """The status codes of every response in a raw answer, in order."""
    return [int(line.split()[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


def restarted(w: World) -> World:
    """Stop a world and start a new one on the same state directory and port."""
    port = w.server.port if w.server else 0
    w.stop()
    return World(w.layout.root, latency=w.latency, faults=Faults()).start(port=port)


def files_outside(root: Path, before: set[Path]) -> set[Path]:
    """Files under root's parent that are new since `before` and not inside root."""
    now = {p for p in root.parent.rglob("*") if p.is_file()}
    return {p for p in now - before if root not in p.parents}
