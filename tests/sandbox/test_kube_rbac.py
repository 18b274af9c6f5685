"""RBAC in a sandbox cluster, driven with the real kubernetes client and raw HTTPS, as a real server decides.

The expected 403 bodies are the real API server's (responsewriters.Forbidden + apierrors.NewForbidden),
written out in full so a wording drift fails here.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from meshwright.sandbox.kube.http.requestinfo import request_info
from tests.sandbox.kube_fixtures import RawKube, Sandbox, config_map, deployment, sandbox
from tests.support import kube_client

__all__ = ["sandbox"]
NS = "team"
SA_USER = f"system:serviceaccount:{NS}:app"
RBAC_GROUP = "rbac.authorization.k8s.io"


def forbidden(message: str, **details: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


def refusal(call: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 403
    body: dict[str, Any] = json.loads(caught.value.body)
    return body


def account(box: Sandbox, namespace: str = NS, name: str = "app") -> str:
    """A fresh service account in `namespace` (created with it if missing) and a token for it."""
    core = kubernetes.client.CoreV1Api(box.kube())
    if namespace not in [n.metadata.name for n in core.list_namespace().items]:
        core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    request = {"spec": {"expirationSeconds": 3600}}
    return str(core.create_namespaced_service_account_token(name, namespace, request).status.token)


def as_token(box: Sandbox, token: str) -> kubernetes.client.ApiClient:
    return kube_client(box.world, box.cluster(), token)


def raw_as(box: Sandbox, token: str) -> RawKube:
    return replace(box.raw(), token=token)


def rbac_api(box: Sandbox) -> kubernetes.client.RbacAuthorizationV1Api:
    return kubernetes.client.RbacAuthorizationV1Api(box.kube())


def bind(box: Sandbox, role: str, *, kind: str = "Role", namespace: str | None = NS, name: str = "b") -> None:
    """Bind the `app` service account (by subject namespace) to a role, in a namespace or cluster-wide."""
    body = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": NS}],
    }
    if namespace is None:
        rbac_api(box).create_cluster_role_binding(body)
    else:
        rbac_api(box).create_namespaced_role_binding(namespace, body)


def test_an_unbound_service_accounts_token_listing_secrets_in_istio_system_gets_the_servers_403(
    sandbox: Sandbox,
) -> None:
    token = account(sandbox, "istio-system", "nobody")
    core = kubernetes.client.CoreV1Api(as_token(sandbox, token))
    assert refusal(lambda: core.list_namespaced_secret("istio-system")) == forbidden(
        'secrets is forbidden: User "system:serviceaccount:istio-system:nobody" cannot list resource '
        '"secrets" in API group "" in the namespace "istio-system"',
        kind="secrets",
    )
    assert refusal(lambda: core.read_namespaced_secret("cacerts", "istio-system")) == forbidden(
        'secrets "cacerts" is forbidden: User "system:serviceaccount:istio-system:nobody" cannot get '
        'resource "secrets" in API group "" in the namespace "istio-system"',
        kind="secrets",
        name="cacerts",
    )
    assert refusal(lambda: core.list_namespace()) == forbidden(
        'namespaces is forbidden: User "system:serviceaccount:istio-system:nobody" cannot list resource '
        '"namespaces" in API group "" at the cluster scope',
        kind="namespaces",
    )


def test_a_role_binding_grants_exactly_the_verb_resource_names_and_namespace_of_its_role(
    sandbox: Sandbox,
) -> None:
    token = account(sandbox)
    operator = kubernetes.client.CoreV1Api(sandbox.kube())
    operator.create_namespace({"metadata": {"name": "elsewhere"}})
    for ns in (NS, "elsewhere"):
        for name in ("allowed", "other"):
            operator.create_namespaced_config_map(ns, config_map(name))
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["allowed"]}
    rbac_api(sandbox).create_namespaced_role(NS, {"metadata": {"name": "one-cm"}, "rules": [rule]})
    bind(sandbox, "one-cm")
    core = kubernetes.client.CoreV1Api(as_token(sandbox, token))
    assert core.read_namespaced_config_map("allowed", NS).metadata.name == "allowed"
    assert refusal(lambda: core.read_namespaced_config_map("other", NS)) == forbidden(
        f'configmaps "other" is forbidden: User "{SA_USER}" cannot get resource "configmaps" in API group '
        f'"" in the namespace "{NS}"',
        kind="configmaps",
        name="other",
    )
    refusals = {
        "list (no name: resourceNames never match)": lambda: core.list_namespaced_config_map(NS),
        "another verb": lambda: core.delete_namespaced_config_map("allowed", NS),
        "another namespace": lambda: core.read_namespaced_config_map("allowed", "elsewhere"),
        "another resource": lambda: core.read_namespaced_secret("allowed", NS),
        "another API group": lambda: kubernetes.client.AppsV1Api(core.api_client).read_namespaced_deployment(
            "allowed", NS
        ),
    }
    for what, call in refusals.items():
        assert refusal(call)["code"] == 403, what


def test_a_cluster_role_binding_grants_cluster_wide_and_a_role_binding_to_it_only_in_its_namespace(
    sandbox: Sandbox,
) -> None:
    token = account(sandbox)
    rule = {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list", "watch"]}
    rbac_api(sandbox).create_cluster_role({"metadata": {"name": "deploy-reader"}, "rules": [rule]})
    apps = kubernetes.client.AppsV1Api(as_token(sandbox, token))
    bind(sandbox, "deploy-reader", kind="ClusterRole", namespace=NS)
    assert apps.list_namespaced_deployment(NS).items == []
    assert refusal(lambda: apps.list_namespaced_deployment("default"))["message"].endswith(
        'cannot list resource "deployments" in API group "apps" in the namespace "default"'
    )
    assert refusal(lambda: apps.list_deployment_for_all_namespaces()) == forbidden(
        f'deployments.apps is forbidden: User "{SA_USER}" cannot list resource "deployments" in API group '
        '"apps" at the cluster scope',
        kind="deployments",
        group="apps",
    )
    bind(sandbox, "deploy-reader", kind="ClusterRole", namespace=None)
    assert apps.list_namespaced_deployment("default").items == []
    assert apps.list_deployment_for_all_namespaces().items == []


def test_watch_and_deletecollection_are_verbs_of_their_own(sandbox: Sandbox) -> None:
    token = account(sandbox)
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "delete"]}
    rbac_api(sandbox).create_namespaced_role(NS, {"metadata": {"name": "cm"}, "rules": [rule]})
    bind(sandbox, "cm")
    raw = raw_as(sandbox, token)
    assert raw.call("GET", f"/api/v1/namespaces/{NS}/configmaps?watch=false")[0] == 200
    status, body = raw.call("GET", f"/api/v1/namespaces/{NS}/configmaps?watch=true&timeoutSeconds=1")
    assert (status, body["message"]) == (
        403,
        f'configmaps is forbidden: User "{SA_USER}" cannot watch resource "configmaps" in API group "" '
        f'in the namespace "{NS}"',
    )
    status, body = raw.call("DELETE", f"/api/v1/namespaces/{NS}/configmaps")
    assert (status, body["message"]) == (
        403,
        f'configmaps is forbidden: User "{SA_USER}" cannot deletecollection resource "configmaps" in API '
        f'group "" in the namespace "{NS}"',
    )


def test_a_subresource_rule_grants_the_subresource_and_not_its_parent(sandbox: Sandbox) -> None:
    token = account(sandbox)
    kubernetes.client.AppsV1Api(sandbox.kube()).create_namespaced_deployment(NS, deployment("web"))
    rules = [
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]
    rbac_api(sandbox).create_namespaced_role(NS, {"metadata": {"name": "subs"}, "rules": rules})
    bind(sandbox, "subs")
    apps = kubernetes.client.AppsV1Api(as_token(sandbox, token))
    assert apps.read_namespaced_deployment_scale("web", NS).spec.replicas == 1
    assert refusal(lambda: apps.read_namespaced_deployment("web", NS))["code"] == 403
    assert refusal(lambda: apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 2}})) == (
        forbidden(
            f'deployments.apps "web" is forbidden: User "{SA_USER}" cannot patch resource "deployments/scale" '
            f'in API group "apps" in the namespace "{NS}"',
            kind="deployments",
            group="apps",
            name="web",
        )
    )
    raw = raw_as(sandbox, token)
    # pods/log passes RBAC (the sandbox serves no logs: 404), the pod itself does not.
    assert raw.call("GET", f"/api/v1/namespaces/{NS}/pods/p/log")[0] == 404
    assert raw.call("GET", f"/api/v1/namespaces/{NS}/pods/p")[0] == 403


def test_a_star_subresource_rule_matches_that_subresource_of_every_resource(sandbox: Sandbox) -> None:
    token = account(sandbox)
    rules = [{"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]}]
    rbac_api(sandbox).create_cluster_role({"metadata": {"name": "scales"}, "rules": rules})
    bind(sandbox, "scales", kind="ClusterRole", namespace=None)
    raw = raw_as(sandbox, token)
    assert raw.call("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/nope/scale")[0] == 404
    assert raw.call("GET", f"/apis/apps/v1/namespaces/{NS}/statefulsets/nope/scale")[0] == 404
    assert raw.call("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/nope/status")[0] == 403


def test_non_resource_urls_discovery_for_everyone_authenticated_the_rest_by_rule(sandbox: Sandbox) -> None:
    token = account(sandbox)
    raw = raw_as(sandbox, token)
    for path in ("/version", "/healthz", "/api", "/api/v1", "/apis", "/apis/apps/v1", "/openapi/v3"):
        assert raw.call("GET", path)[0] == 200, path
    status, body = raw.call("GET", "/logs/kube-apiserver.log")
    assert (status, body) == (
        403,
        forbidden(f'forbidden: User "{SA_USER}" cannot get path "/logs/kube-apiserver.log"'),
    )
    rules = [{"nonResourceURLs": ["/logs/*"], "verbs": ["get"]}]
    rbac_api(sandbox).create_cluster_role({"metadata": {"name": "logs"}, "rules": rules})
    bind(sandbox, "logs", kind="ClusterRole", namespace=None)
    assert raw.call("GET", "/logs/kube-apiserver.log")[0] == 404  # allowed; the sandbox serves none
    assert raw.call("GET", "/logs")[0] == 403  # the prefix before `*` is `/logs/`
    assert raw.call("POST", "/logs/x")[0] == 403  # the verb of a URL is its method, and only get is bound


def test_a_binding_to_a_missing_role_denies_and_says_so_as_the_server_does(sandbox: Sandbox) -> None:
    token = account(sandbox)
    bind(sandbox, "ghost")
    core = kubernetes.client.CoreV1Api(as_token(sandbox, token))
    assert refusal(lambda: core.list_namespaced_pod(NS))["message"] == (
        f'pods is forbidden: User "{SA_USER}" cannot list resource "pods" in API group "" in the namespace '
        f'"{NS}": RBAC: role.rbac.authorization.k8s.io "ghost" not found'
    )


def test_the_operator_token_is_cluster_admin(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    rbac_api(sandbox).delete_cluster_role_binding("cluster-admin")  # system:masters needs no binding
    assert raw.call("GET", "/api/v1/secrets")[0] == 200
    assert raw.call("POST", "/api/v1/namespaces", {"metadata": {"name": "x"}})[0] == 201
    assert raw.call("DELETE", "/api/v1/namespaces/x")[0] == 200
    assert raw.call("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-admin")[0] == 200
    assert raw.call("GET", "/logs/anything")[0] == 404  # past authorization; nothing served there


def test_access_reviews_ask_the_authorizer(sandbox: Sandbox) -> None:
    token = account(sandbox)
    rule = {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}
    rbac_api(sandbox).create_namespaced_role(NS, {"metadata": {"name": "logs"}, "rules": [rule]})
    bind(sandbox, "logs", name="can-read-logs")
    authz = kubernetes.client.AuthorizationV1Api(as_token(sandbox, token))

    def self_review(**attributes: str) -> Any:
        spec = {"resourceAttributes": {"namespace": NS, "verb": "get", **attributes}}
        return authz.create_self_subject_access_review({"spec": spec}).status

    allowed = self_review(resource="pods", subresource="log")
    assert allowed.allowed is True
    assert allowed.reason == (
        'RBAC: allowed by RoleBinding "can-read-logs/team" of Role "logs" to ServiceAccount "app/team"'
    )
    assert self_review(resource="pods").allowed is False
    review = {
        "spec": {
            "user": SA_USER,
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "resourceAttributes": {"namespace": NS, "verb": "get", "resource": "pods", "subresource": "log"},
        }
    }
    operator = kubernetes.client.AuthorizationV1Api(sandbox.kube())
    assert operator.create_subject_access_review(review).status.allowed is True
    assert refusal(lambda: authz.create_subject_access_review(review))["message"].startswith(
        f'subjectaccessreviews.authorization.k8s.io is forbidden: User "{SA_USER}" cannot create'
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces", {}, ("list", "", "namespaces", "", "", "")),
        ("GET", "/api/v1/namespaces/a", {}, ("get", "", "namespaces", "", "a", "a")),
        ("PUT", "/api/v1/namespaces/a/finalize", {}, ("update", "", "namespaces", "finalize", "a", "a")),
        ("GET", "/api/v1/namespaces/a/pods", {"watch": "1"}, ("watch", "", "pods", "", "", "a")),
        ("GET", "/api/v1/namespaces/a/pods", {"watch": "0"}, ("list", "", "pods", "", "", "a")),
        ("GET", "/api/v1/watch/namespaces/a/pods", {}, ("watch", "", "pods", "", "", "a")),
        (
            "DELETE",
            "/apis/apps/v1/namespaces/a/deployments",
            {},
            ("deletecollection", "apps", "deployments", "", "", "a"),
        ),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/a/deployments/d/scale",
            {},
            ("patch", "apps", "deployments", "scale", "d", "a"),
        ),
        (
            "POST",
            "/api/v1/namespaces/a/serviceaccounts/r/token",
            {},
            ("create", "", "serviceaccounts", "token", "r", "a"),
        ),
        (
            "GET",
            "/api/v1/namespaces/a/services/s:80/proxy/x/y",
            {},
            ("get", "", "services", "proxy", "s:80", "a"),
        ),
    ],
)
def test_request_info_reads_the_url_as_the_api_server_does(
    method: str, path: str, query: dict[str, str], expected: tuple[str, ...]
) -> None:
    attrs = request_info(method, path, query)
    assert attrs.resource_request
    assert (
        attrs.verb,
        attrs.api_group,
        attrs.resource,
        attrs.subresource,
        attrs.name,
        attrs.namespace,
    ) == expected


@pytest.mark.parametrize(
    "path", ["/", "/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/version/", "/openapi/v3"]
)
def test_paths_without_a_resource_are_non_resource_requests_named_by_method(path: str) -> None:
    attrs = request_info("GET", path, {})
    assert (attrs.resource_request, attrs.verb, attrs.path) == (False, "get", path)
