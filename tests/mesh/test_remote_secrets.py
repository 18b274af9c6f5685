"""exchange_remote_secret against the sandbox: created, proven, unchanged on rerun, rotated, refused."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kubernetes.client
import pytest
import yaml

from meshwright import remote_secrets as rs
from meshwright.clients import MeshwrightTarget
from meshwright.errors import NotFound, PermanentError, TransientError
from meshwright.kube import connect
from meshwright.models import ClusterAccess
from tasks.remote_secrets import _store, exchange_remote_secret, exchange_remote_secrets
from tests.mesh.support import NS, core

READER_TOKEN = "istio-reader-service-account-istio-remote-secret-token"


def stored_kubeconfig(target: MeshwrightTarget, primary: ClusterAccess, source: str) -> dict:
    secret = core(target, primary).read_namespaced_secret(f"istio-remote-secret-{source}", NS)
    assert secret.metadata.labels == {"istio/multiCluster": "true"}
    assert secret.metadata.annotations == {"networking.istio.io/cluster": source}
    assert list(secret.data) == [source]
    return yaml.safe_load(base64.b64decode(secret.data[source]))


def test_secret_is_created_in_the_primary_with_a_working_kubeconfig_named_after_the_source(
    target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    west, central = clusters["west"], clusters["central"]
    result = exchange_remote_secret.fn(west, central, target=target)
    assert (result.source, result.primary, result.secret, result.action) == (
        "west",
        "central",
        "istio-remote-secret-west",
        "created",
    )
    config = stored_kubeconfig(target, central, "west")
    assert [c["name"] for c in config["clusters"]] == ["west"]
    assert config["contexts"] == [{"name": "west", "context": {"cluster": "west", "user": "west"}}]
    assert config["current-context"] == "west"
    assert config["clusters"][0]["cluster"]["server"] == f"https://{west.endpoint}"
    assert config["clusters"][0]["cluster"]["certificate-authority-data"] == west.ca_certificate
    token = config["users"][0]["user"]["token"]
    assert token not in result.model_dump_json()
    as_reader = connect(west.endpoint, west.ca_certificate, lambda: token)
    assert kubernetes.client.CoreV1Api(as_reader).list_namespace(limit=1).items
    elsewhere = connect(central.endpoint, central.ca_certificate, lambda: token)
    with pytest.raises(kubernetes.client.ApiException) as rejected:
        kubernetes.client.CoreV1Api(elsewhere).list_namespace(limit=1)
    assert rejected.value.status == 401


def test_rerun_leaves_the_secret_alone_and_a_rotated_token_rewrites_it(
    target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    west, central = clusters["west"], clusters["central"]
    first = exchange_remote_secret.fn(west, central, target=target)
    version = (
        core(target, central).read_namespaced_secret("istio-remote-secret-west", NS).metadata.resource_version
    )
    again = exchange_remote_secret.fn(west, central, target=target)
    assert (again.action, again.fingerprint) == ("unchanged", first.fingerprint)
    assert (
        core(target, central).read_namespaced_secret("istio-remote-secret-west", NS).metadata.resource_version
        == version
    )
    # Rotation: a token is tied to its service account's uid, so a recreated account gets a new one.
    core(target, west).delete_namespaced_secret(READER_TOKEN, NS)
    core(target, west).delete_namespaced_service_account("istio-reader-service-account", NS)
    core(target, west).create_namespaced_service_account(
        NS, {"metadata": {"name": "istio-reader-service-account"}}
    )
    rotated = exchange_remote_secret.fn(west, central, target=target)
    assert rotated.action == "updated"
    assert rotated.fingerprint != first.fingerprint


def test_missing_reader_account_fails_naming_the_cluster_and_creates_nothing(
    target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    west, central = clusters["west"], clusters["central"]
    core(target, west).delete_namespaced_service_account("istio-reader-service-account", NS)
    with pytest.raises(NotFound, match=r"\[west\].*istio-reader-service-account is missing.*base chart"):
        exchange_remote_secret.fn(west, central, target=target)
    names = [s.metadata.name for s in core(target, west).list_namespaced_secret(NS).items]
    assert READER_TOKEN not in names
    assert "istio-remote-secret-west" not in [
        s.metadata.name for s in core(target, central).list_namespaced_secret(NS).items
    ]


def test_a_token_that_does_not_authenticate_is_refused_before_anything_is_stored(
    target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    west, central = clusters["west"], clusters["central"]
    core(target, west).create_namespaced_secret(
        NS,
        {
            "metadata": {
                "name": READER_TOKEN,
                "annotations": {"kubernetes.io/service-account.name": "istio-reader-service-account"},
            },
            "type": "kubernetes.io/service-account-token",
            "data": {"token": base64.b64encode(b"not-a-token").decode()},
        },
    )
    with pytest.raises(
        PermanentError, match=r"\[west\].*reader token does not work against https://"
    ) as error:
        exchange_remote_secret.fn(west, central, target=target)
    assert "not-a-token" not in str(error.value)
    assert "istio-remote-secret-west" not in [
        s.metadata.name for s in core(target, central).list_namespaced_secret(NS).items
    ]


def test_a_reader_without_its_binding_is_refused_with_the_servers_403_before_anything_is_stored(
    target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    west, central = clusters["west"], clusters["central"]
    rbac = kubernetes.client.RbacAuthorizationV1Api(core(target, west).api_client)
    rbac.delete_cluster_role_binding(f"istio-reader-clusterrole-{NS}")
    with pytest.raises(PermanentError) as error:
        exchange_remote_secret.fn(west, central, target=target)
    assert (
        'namespaces is forbidden: User "system:serviceaccount:istio-system:istio-reader-service-account" '
        'cannot list resource "namespaces" in API group "" at the cluster scope'
    ) in str(error.value)
    assert "istio-remote-secret-west" not in [
        s.metadata.name for s in core(target, central).list_namespaced_secret(NS).items
    ]


def test_pairs_sharing_a_source_run_in_parallel_and_share_its_token(
    target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    west = clusters["west"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(
                lambda p: exchange_remote_secret.fn(west, clusters[p], target=target), ["central", "east"]
            )
        )
    assert [r.action for r in results] == ["created", "created"]
    tokens = {
        stored_kubeconfig(target, clusters[p], "west")["users"][0]["user"]["token"]
        for p in ("central", "east")
    }
    assert len(tokens) == 1
    assert results[0].fingerprint == results[1].fingerprint


def test_a_sources_secret_goes_into_every_reader_at_once_and_a_refusing_one_is_named(
    target: MeshwrightTarget, clusters: dict[str, ClusterAccess]
) -> None:
    west, central, east = clusters["west"], clusters["central"], clusters["east"]
    results = exchange_remote_secrets.fn(west, [central, east], target=target)
    assert [(r.primary, r.action) for r in results] == [("central", "created"), ("east", "created")]
    assert len({r.fingerprint for r in results}) == 1
    away = east.model_copy(update={"endpoint": "127.0.0.1:1"})
    with pytest.raises(TransientError, match=r"1 primary did not take west's secret: .*\[east\]"):
        exchange_remote_secrets.fn(west, [central, away], target=target)
    again = exchange_remote_secrets.fn(west, [central, east], target=target)
    assert [r.action for r in again] == ["unchanged", "unchanged"]  # a retry rewrites nothing in place


def test_within_a_run_a_primary_is_listed_once_and_a_change_behind_the_list_is_still_written(
    target: MeshwrightTarget, clusters: dict[str, ClusterAccess], monkeypatch: pytest.MonkeyPatch
) -> None:
    central = clusters["central"]
    api = core(target, central)
    wanted = {s: rs.remote_secret(s, f"kubeconfig of {s}".encode()) for s in ("west", "east")}
    assert [_store(api, central, wanted[s], run="run-1") for s in wanted] == ["created", "created"]
    reads: list[str] = []
    real = kubernetes.client.CoreV1Api.read_namespaced_secret

    def counted(self: kubernetes.client.CoreV1Api, name: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(kubernetes.client.CoreV1Api, "read_namespaced_secret", counted)
    # a second source's secret and a rerun of the first: answered from the run's one list
    assert _store(api, central, wanted["west"], run="run-1") == "unchanged"
    assert reads == []
    # changed under the list (another writer): the replace's conflict makes it read and write again
    behind = {**wanted["east"], "data": {"east": base64.b64encode(b"someone else's").decode()}}
    api.replace_namespaced_secret("istio-remote-secret-east", NS, behind)
    newer = rs.remote_secret("east", b"rotated kubeconfig of east")
    assert _store(api, central, newer, run="run-1") == "updated"
    assert reads == ["istio-remote-secret-east"]
    stored = api.read_namespaced_secret("istio-remote-secret-east", NS)
    assert rs.content_digest(api.api_client.sanitize_for_serialization(stored)) == rs.content_digest(newer)
    # a new run lists again and sees what the last one wrote
    assert _store(api, central, newer, run="run-2") == "unchanged"
