"""An in-process sandbox world per test (fast latencies) and real clients pointed at it (the client
helpers are in tests/support.py, raw requests in raw.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
from google.cloud import compute_v1, container_v1

from meshwright.sandbox.faults import Faults
from meshwright.sandbox.world import World
from tests.support import FAST, firewalls_client, gke_client, kube_client, running_cluster


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "state", latency=FAST, faults=Faults()).start()
    yield w
    w.stop()


@pytest.fixture
def gke(world: World) -> container_v1.ClusterManagerClient:
    return gke_client(world)


@pytest.fixture
def firewalls(world: World) -> compute_v1.FirewallsClient:
    return firewalls_client(world)


@pytest.fixture
def central(world: World, gke: container_v1.ClusterManagerClient) -> container_v1.Cluster:
    return running_cluster(gke, "central")


@pytest.fixture
def kube(world: World, central: container_v1.Cluster) -> kubernetes.client.ApiClient:
    return kube_client(world, central)
