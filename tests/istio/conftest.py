"""Istio tasks run with `task.fn()` against the in-process sandbox, with real pyhelm3 and helm."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from meshwright import clients, helm
from meshwright.clients import MeshwrightTarget
from meshwright.helm import resolve_charts
from meshwright.models import ChartRef, ClusterAccess
from meshwright.sandbox.contract import BUNDLED_CHARTS
from meshwright.sandbox.world import World
from meshwright.spec import MeshSpec, Target
from tasks.clusters import create_cluster, wait_cluster
from tests.dataplane.meshes import CENTRAL, WEST, mesh_spec
from tests.sandbox.conftest import FAST, register
from tests.tasks.conftest import no_run_logger, sandbox, target

__all__ = ["no_run_logger", "sandbox", "target"]


def primary_remote() -> MeshSpec:
    """central and its remote west, without Bookinfo."""
    return mesh_spec("m1", [CENTRAL, WEST])


@pytest.fixture(scope="session")
def bundled() -> list[ChartRef]:
    return resolve_charts(str(BUNDLED_CHARTS), "1.30.3", hint="")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The root CA's file store and kubeconfigs land under the test's own directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def shared_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshwrightTarget]:
    """One sandbox for a module whose tests only read what a fixture installed once."""
    root = tmp_path_factory.mktemp("shared")
    world = World(root / "sandbox", latency=FAST).start()
    register(world)
    clients.reset_cache()
    here = Path.cwd()
    os.chdir(root)
    try:
        yield MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(root / "sandbox"))
    finally:
        os.chdir(here)
        world.stop()
        clients.reset_cache()


def bring_up(spec: MeshSpec, target: MeshwrightTarget) -> dict[str, ClusterAccess]:
    created = {c.name: create_cluster.fn(spec, c.name, target=target, expires=None) for c in spec.clusters}
    return {name: wait_cluster.fn(spec, c, target=target) for name, c in created.items()}


def api(target: MeshwrightTarget, access: ClusterAccess) -> kubernetes.client.ApiClient:
    return clients.cloud(target).kube(access.endpoint, access.ca_certificate)


def helm_releases(target: MeshwrightTarget, access: ClusterAccess) -> list[dict[str, Any]]:
    """`helm list` in the cluster's istio-system (name, revision, chart, app_version, status)."""
    with clients.cloud(target).helm_for(access, step="test") as command:
        return helm.list_releases(command, "istio-system")


def get(target: MeshwrightTarget, access: ClusterAccess, kind: str, name: str, **kw: Any) -> Any:
    """Read one object with the kubernetes client: `get(t, a, "deployment", "istiod", namespace=...)`."""
    client = api(target, access)
    readers: dict[str, Any] = {
        "deployment": kubernetes.client.AppsV1Api(client).read_namespaced_deployment,
        "service": kubernetes.client.CoreV1Api(client).read_namespaced_service,
        "configmap": kubernetes.client.CoreV1Api(client).read_namespaced_config_map,
        "namespace": kubernetes.client.CoreV1Api(client).read_namespace,
        "endpointslice": kubernetes.client.DiscoveryV1Api(client).read_namespaced_endpoint_slice,
        "webhook": kubernetes.client.AdmissionregistrationV1Api(client).read_mutating_webhook_configuration,
        "serviceaccount": kubernetes.client.CoreV1Api(client).read_namespaced_service_account,
    }
    return readers[kind](name, **kw)
