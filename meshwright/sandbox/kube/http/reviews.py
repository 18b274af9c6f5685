"""TokenReview, SubjectAccessReview and SelfSubjectAccessReview: create-only kinds that store nothing.

A TokenReview says who a token authenticates as (the same answer `auth.py` gives the API server);
an access review asks the cluster's authorizer, as kubernetes/kubernetes
`pkg/registry/authorization/subjectaccessreview/rest.go` and `.../selfsubjectaccessreview/rest.go`
do: the spec's user and groups, or the requester's own for a self review.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshwright.sandbox.http import Request
from meshwright.sandbox.kube import rbac
from meshwright.sandbox.kube.auth import TokenAuthority
from meshwright.sandbox.kube.http import protobuf
from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.status import KubeError

KINDS = {"TokenReview", "SubjectAccessReview", "SelfSubjectAccessReview"}
Decide = Callable[[rbac.User, rbac.Attributes], rbac.Decision]


def review_body(r: Request) -> dict[str, Any]:
    """kubectl sends its self review as protobuf; a body nothing can read asks about nothing."""
    try:
        body = (
            protobuf.decode(r.body) if r.content_type == "application/vnd.kubernetes.protobuf" else r.json()
        )
    except (KubeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def token_review(body: dict[str, Any], authority: TokenAuthority) -> dict[str, Any]:
    given = body.get("spec")
    spec: dict[str, Any] = given if isinstance(given, dict) else {}
    token = spec.get("token")
    user = authority.authenticate(token) if isinstance(token, str) and token else None
    status: dict[str, Any] = {"authenticated": user is not None}
    if user is not None:
        status["user"] = {"username": user.name, "groups": list(user.groups)}
    return {
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {},
        "spec": spec,
        "status": status,
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def attributes(spec: dict[str, Any]) -> rbac.Attributes | None:
    """authorizationutil.ResourceAttributesFrom / NonResourceAttributesFrom."""
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if isinstance(res, dict):
        return rbac.Attributes(
            verb=_text(res.get("verb")),
            path="",
            resource_request=True,
            api_group=_text(res.get("group")),
            api_version=_text(res.get("version")),
            namespace=_text(res.get("namespace")),
            resource=_text(res.get("resource")),
            subresource=_text(res.get("subresource")),
            name=_text(res.get("name")),
        )
    if isinstance(non, dict):
        return rbac.Attributes(verb=_text(non.get("verb")), path=_text(non.get("path")))
    return None


def _subject(rt: ResourceType, spec: dict[str, Any], requester: rbac.User) -> rbac.User:
    if rt.kind == "SelfSubjectAccessReview":
        return requester
    groups = spec.get("groups")
    return rbac.User(
        _text(spec.get("user")),
        tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
    )


def access_review(
    rt: ResourceType, body: dict[str, Any], *, requester: rbac.User, decide: Decide
) -> dict[str, Any]:
    given = body.get("spec")
    spec: dict[str, Any] = given if isinstance(given, dict) else {}
    attrs = attributes(spec)
    status: dict[str, Any] = {"allowed": False}
    if attrs is not None:
        decision = decide(_subject(rt, spec, requester), attrs)
        status["allowed"] = decision.allowed
        if decision.reason:
            status["reason"] = decision.reason
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {}, "spec": spec, "status": status}
