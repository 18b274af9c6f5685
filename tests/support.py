"""Helpers that tests of several folders share (plain functions; the fixtures are in conftest.py).

The real GKE and Kubernetes clients pointed at an in-process sandbox, a spec to run tasks with,
meshwright's `.meshwright` folder moved for a while, and one way to wait for a condition.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import kubernetes.client
import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, container_v1

from meshwright.sandbox import store
from meshwright.sandbox.kube.fleet import operator_token
from meshwright.sandbox.settings import Latency, Layout
from meshwright.sandbox.world import World
from meshwright.settings import settings
from meshwright.spec import MeshSpec, validate_spec

T = TypeVar("T")
FAST = Latency(create=0.3, delete=0.2, pending=0.05, firewall=0.0, rollout=0.1, loadbalancer=0.1)
PROJECT = "demo-project"
ZONE = "us-central1-a"
PARENT = f"projects/{PROJECT}/locations/{ZONE}"
HOME_ENV = "MESHWRIGHT_HOME"


def wait_for(check: Callable[[], T], *, what: str, timeout: float = 30.0) -> T:
    """Poll `check` until it returns something truthy, and return that; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


@contextlib.contextmanager
def meshwright_home_at(path: Path) -> Iterator[Path]:
    """meshwright's home (root CA files, kubeconfigs) at `path` until the block ends.

    `settings()` is read once and cached: it is read again on the way in and on the way out."""
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(HOME_ENV, str(path))
            settings.cache_clear()
            assert settings().home == path
            yield path
    finally:
        settings.cache_clear()


def register(w: World) -> None:
    """Make an in-process world findable like a daemon (no pid: nothing may signal the test process)."""
    store.write_json(
        Layout(w.layout.root).daemon, {"port": w.server.port if w.server else 0, "gcp": w.base_url()}
    )


def mesh(**overrides: object) -> MeshSpec:
    """central (4 nodes, labelled) and its remote west, in demo-project, with a 2h TTL."""
    data: dict[str, object] = {
        "name": "m1",
        "project": "demo-project",
        "ttl": "2h",
        "clusters": [
            {
                "name": "central",
                "location": "us-central1-a",
                "nodes": 4,
                "pod_cidr": "10.8.0.0/14",
                "labels": {"team": "mesh"},
            },
            {"name": "west", "location": "us-west1-b", "primary": "central"},
        ],
    }
    data.update(overrides)
    return validate_spec(data)


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
