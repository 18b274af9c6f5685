"""What a request asks to do, read off its method and URL as the real API server reads it.

A port of kubernetes/kubernetes `staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`
(`RequestInfoFactory.NewRequestInfo`): only `/api/{version}/...` and `/apis/{group}/{version}/...`
with at least a resource are resource requests; everything else (`/api`, `/apis/apps/v1`,
`/version`, `/openapi/v3`) is a non-resource request whose verb is the lower-cased HTTP method.
A GET without a name is `list`, or `watch` when `watch` is set to anything but `false`/`0`; a
DELETE without a name is `deletecollection`; `/watch/` and `/proxy/` path prefixes are verbs.
It decides nothing: authorization happens before routing, so it must not depend on what exists.
"""

from __future__ import annotations

from meshwright.sandbox.kube.rbac import Attributes

METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
SPECIAL_VERBS = ("proxy", "watch")
NAMESPACE_SUBRESOURCES = ("status", "finalize")


def request_info(method: str, path: str, query: dict[str, str]) -> Attributes:
    """The authorizer's attributes of one request; `path` is the decoded URL path, as sent."""
    parts = path.strip("/").split("/") if path.strip("/") else []
    plain = Attributes(verb=method.lower(), path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return plain
    group = ""
    rest = parts[1:]
    if parts[0] == "apis":
        if len(rest) < 3:
            return plain
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    if rest[0] in SPECIAL_VERBS:
        if len(rest) < 2:
            return Attributes(verb=rest[0], path=path, resource_request=True, api_group=group)
        verb, rest = rest[0], rest[1:]
    else:
        verb = METHOD_VERBS.get(method.upper(), "")
    return _resource(verb, path, group, version, rest, query)


def _resource(
    verb: str, path: str, group: str, version: str, rest: list[str], query: dict[str, str]
) -> Attributes:
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    subresource = rest[2] if len(rest) >= 3 and verb != "proxy" else ""
    name = rest[1] if len(rest) >= 2 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch", "false").lower() not in ("false", "0") else "list"
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(
        verb=verb,
        path=path,
        resource_request=True,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=rest[0],
        subresource=subresource,
        name=name,
    )
