"""Revoking a service-account token in a sandbox cluster, as kube-apiserver's lookup decides
(kubernetes pkg/serviceaccount/legacy.go `legacyValidator.Validate`): a token Secret's token works
while that Secret holds it, and is refused with 401 once the Secret is deleted."""

from __future__ import annotations

import base64
import time

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from tests.sandbox.kube_fixtures import Sandbox, sandbox
from tests.support import kube_client

__all__ = ["sandbox"]
NS = "istio-system"
SA = "reader"


def _token_secret(core: kubernetes.client.CoreV1Api, name: str) -> str:
    body = {
        "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": SA}},
        "type": "kubernetes.io/service-account-token",
    }
    core.create_namespaced_secret(NS, body)
    for _ in range(50):
        data = core.read_namespaced_secret(name, NS).data or {}
        if data.get("token"):
            return base64.b64decode(data["token"]).decode()
        time.sleep(0.05)
    raise AssertionError(f"secret {name} got no token")


def _lists(box: Sandbox, token: str) -> int:
    client = kube_client(box.world, box.cluster(), token)
    try:
        kubernetes.client.CoreV1Api(client).list_namespaced_service(NS)
        return 200
    except ApiException as e:
        return int(e.status)
    finally:
        client.close()


@pytest.fixture
def core(sandbox: Sandbox) -> kubernetes.client.CoreV1Api:
    api = kubernetes.client.CoreV1Api(sandbox.kube())
    if NS not in [n.metadata.name for n in api.list_namespace().items]:
        api.create_namespace({"metadata": {"name": NS}})
    api.create_namespaced_service_account(NS, {"metadata": {"name": SA}})
    return api


def test_a_deleted_token_secrets_token_gets_401_and_a_second_secrets_token_still_works(
    sandbox: Sandbox, core: kubernetes.client.CoreV1Api
) -> None:
    old, new = _token_secret(core, "reader-token-a"), _token_secret(core, "reader-token-b")
    assert _lists(sandbox, old) == 403  # authenticated, no RBAC
    assert _lists(sandbox, new) == 403

    core.delete_namespaced_secret("reader-token-a", NS)

    assert _lists(sandbox, old) == 401
    assert _lists(sandbox, new) != 401


def test_a_token_secret_that_holds_another_token_refuses_the_old_one(
    sandbox: Sandbox, core: kubernetes.client.CoreV1Api
) -> None:
    old = _token_secret(core, "reader-token-a")
    secret = core.read_namespaced_secret("reader-token-a", NS)
    secret.data["token"] = base64.b64encode(b"replaced").decode()
    core.replace_namespaced_secret("reader-token-a", NS, secret)

    assert _lists(sandbox, old) == 401  # "Token does not match server's copy"


def test_a_recreated_service_account_refuses_the_tokens_of_the_one_before(
    sandbox: Sandbox, core: kubernetes.client.CoreV1Api
) -> None:
    request = {"spec": {"expirationSeconds": 3600}}
    bound = str(core.create_namespaced_service_account_token(SA, NS, request).status.token)
    core.delete_namespaced_service_account(SA, NS)
    core.create_namespaced_service_account(NS, {"metadata": {"name": SA}})

    assert _lists(sandbox, bound) == 401
