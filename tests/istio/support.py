"""The Istio tests' helpers: a primary and its remote brought up by the real tasks, and what landed in them."""

from __future__ import annotations

from typing import Any

import kubernetes.client

from meshwright import clients, helm
from meshwright.clients import MeshwrightTarget
from meshwright.models import ClusterAccess
from meshwright.spec import MeshSpec
from tasks.clusters import create_cluster, wait_cluster
from tests.dataplane.meshes import CENTRAL, WEST, mesh_spec


def primary_remote() -> MeshSpec:
    """central and its remote west, without Bookinfo."""
    return mesh_spec("m1", [CENTRAL, WEST])


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
