"""meshwright/kube.py against a sandbox cluster: connect, apply (CRDs first), wait, delete."""

from __future__ import annotations

from typing import Any

import kubernetes.client
import pytest
from google.cloud import container_v1

from meshwright import kube
from meshwright.errors import PermissionDenied
from meshwright.sandbox.kube.fleet import operator_token
from meshwright.sandbox.world import World
from tests.sandbox.test_kube_api import CRD, deployment

MANIFESTS: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}},
    {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "cross-network-gateway", "namespace": "istio-system"},
        "spec": {"selector": {"istio": "eastwestgateway"}},
    },
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        **deployment("istiod", replicas=1),
        "metadata": {"name": "istiod", "namespace": "istio-system"},
    },
    CRD,
]


def connect(
    world: World, cluster: container_v1.Cluster, token: str | None = None
) -> kubernetes.client.ApiClient:
    tokens = iter([token] if token else [])
    return kube.connect(
        cluster.endpoint,
        cluster.master_auth.cluster_ca_certificate,
        lambda: next(tokens, None) or operator_token(world.layout),
    )


def test_apply_puts_crds_first_and_is_idempotent(world: World, central: container_v1.Cluster) -> None:
    client = connect(world, central)
    applied = kube.apply(client, MANIFESTS, cluster="central", step="test")
    assert applied[0] == "CustomResourceDefinition/gateways.networking.istio.io"
    assert kube.apply(client, MANIFESTS, cluster="central", step="test") == applied
    kube.wait_rollout(client, "istio-system", "istiod", cluster="central", step="test", timeout=10)
    gw = kubernetes.client.CustomObjectsApi(client).get_namespaced_custom_object(
        "networking.istio.io", "v1", "istio-system", "gateways", "cross-network-gateway"
    )
    assert gw["metadata"]["managedFields"][0]["manager"] == "meshwright"


def test_delete_removes_what_was_applied_and_tolerates_absence(
    world: World, central: container_v1.Cluster
) -> None:
    client = connect(world, central)
    kube.apply(client, MANIFESTS, cluster="central", step="test")
    kube.delete(client, MANIFESTS, cluster="central", step="test")
    names = [n.metadata.name for n in kubernetes.client.CoreV1Api(client).list_namespace().items]
    assert "istio-system" not in names
    kube.delete(client, MANIFESTS, cluster="central", step="test")


def test_token_is_fetched_on_every_request(world: World, central: container_v1.Cluster) -> None:
    calls: list[int] = []

    def token() -> str:
        calls.append(1)
        return operator_token(world.layout)

    client = kube.connect(central.endpoint, central.master_auth.cluster_ca_certificate, token)
    kubernetes.client.CoreV1Api(client).list_namespace()
    kubernetes.client.CoreV1Api(client).list_namespace()
    assert len(calls) >= 2


def test_bad_token_becomes_permission_denied(world: World, central: container_v1.Cluster) -> None:
    client = kube.connect(central.endpoint, central.master_auth.cluster_ca_certificate, lambda: "expired")
    with pytest.raises(PermissionDenied, match=r"\[central\]"):
        kube.apply(client, MANIFESTS[:1], cluster="central", step="apply")
