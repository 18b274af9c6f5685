"""istiod's validation webhook on the sandbox's API: a VirtualService Istio would refuse is refused at
create and update, with the API server's words for a webhook's denial (no Helm: the webhook
configuration is created as Istio's base chart renders it)."""

from __future__ import annotations

import json
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from meshwright.clients import MeshwrightTarget
from meshwright.models import ClusterAccess
from tests.mesh.support import NS, kube
from tests.sandbox.test_istio_kinds import istio_crd

GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"
DEFAULT_VALIDATOR = {
    "metadata": {"name": "istiod-default-validator"},
    "webhooks": [
        {
            "name": "validation.istio.io",
            "clientConfig": {
                "service": {"name": "istiod", "namespace": NS, "path": "/validate", "port": 443}
            },
            "rules": [
                {
                    "operations": ["CREATE", "UPDATE"],
                    "apiGroups": ["security.istio.io", "networking.istio.io"],
                    "apiVersions": ["*"],
                    "resources": ["*"],
                }
            ],
            "failurePolicy": "Ignore",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        }
    ],
}
UNCLOSED = (
    'virtualservices.networking.istio.io "bookinfo" is forbidden: admission webhook "validation.istio.io" '
    'denied the request: configuration is invalid: "uri": error parsing regexp: missing closing ): '
    "`(unclosed`; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)"
)


def virtual_service(regex: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualService",
        "metadata": {"name": "bookinfo"},
        "spec": {
            "hosts": ["*"],
            "gateways": ["bookinfo-gateway"],
            "http": [
                {"match": [{"uri": {"regex": regex}}], "route": [{"destination": {"host": "productpage"}}]}
            ],
        },
    }


@pytest.fixture
def custom(
    target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> kubernetes.client.CustomObjectsApi:
    """central with the VirtualService kind and Istio's default validation webhook."""
    client = kube(target, clusters["central"])
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    kubernetes.client.ApiextensionsV1Api(client).create_custom_resource_definition(
        istio_crd(PLURAL, "VirtualService", schema)
    )
    kubernetes.client.AdmissionregistrationV1Api(client).create_validating_webhook_configuration(
        DEFAULT_VALIDATOR
    )
    return kubernetes.client.CustomObjectsApi(client)


def create(api: kubernetes.client.CustomObjectsApi, body: dict[str, Any]) -> Any:
    return api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)


def test_an_invalid_uri_regex_is_refused_at_create_and_update_as_istio_refuses_it(
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    with pytest.raises(ApiException) as refused:
        create(custom, virtual_service("(unclosed"))
    status = json.loads(refused.value.body)
    assert (refused.value.status, status["reason"], status["message"]) == (403, "Forbidden", UNCLOSED)
    create(custom, virtual_service("/(a+)+b"))  # valid RE2: matched in linear time by the data plane
    with pytest.raises(ApiException) as refused:
        custom.replace_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "bookinfo", virtual_service("(unclosed")
        )
    assert json.loads(refused.value.body)["message"] == UNCLOSED
    body = virtual_service("a" * 1025)
    body["metadata"]["name"] = "long"
    with pytest.raises(ApiException) as refused:
        create(custom, body)
    assert (
        '"uri": regex is too large, max length allowed is 1024' in json.loads(refused.value.body)["message"]
    )


def test_without_a_reachable_istiod_the_ignore_policy_lets_it_in(
    target: MeshwrightTarget, clusters: dict[str, ClusterAccess], custom: kubernetes.client.CustomObjectsApi
) -> None:
    kubernetes.client.AppsV1Api(kube(target, clusters["central"])).delete_namespaced_deployment("istiod", NS)
    assert create(custom, virtual_service("(unclosed"))["metadata"]["name"] == "bookinfo"
