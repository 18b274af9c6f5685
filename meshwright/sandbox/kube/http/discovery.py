"""`/version`, API discovery (legacy and aggregated v2) and a small `/openapi/v3`.

The OpenAPI documents carry only what kubectl needs to skip client-side validation and let
the server validate (`fieldValidation`); they hold no schemas.
"""

from __future__ import annotations

import json
from typing import Any

from meshwright.sandbox.kube.registry import VERBS, Registry, ResourceType

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4-gke.1106000",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-10-01T00:00:00Z",
    "goVersion": "go1.23.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    return "as=APIGroupDiscoveryList" in accept and "v=v2" in accept


REVIEWS = {"TokenReview", "SubjectAccessReview", "SelfSubjectAccessReview"}


SUBRESOURCE_KINDS = {"scale": "Scale", "token": "TokenRequest", "portforward": "PodPortForwardOptions"}
SUBRESOURCE_VERBS = {
    "token": ["create"],
    "proxy": ["create", "delete", "get", "patch", "update"],
    "portforward": ["create", "get"],  # a connect verb: GET or POST with an upgrade
}


def _verbs(rt: ResourceType) -> list[str]:
    return ["create"] if rt.kind in REVIEWS else list(VERBS)


def _sub_kind(rt: ResourceType, sub: str) -> str:
    return SUBRESOURCE_KINDS.get(sub, rt.kind)


def _sub_verbs(sub: str) -> list[str]:
    return SUBRESOURCE_VERBS.get(sub, ["get", "patch", "update"])


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for rt in registry.all():
        if (rt.group, rt.version) != (group, version):
            continue
        resources.append(
            {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": _verbs(rt),
                **({"shortNames": list(rt.short_names)} if rt.short_names else {}),
                **({"categories": list(rt.categories)} if rt.categories else {}),
            }
        )
        for sub in rt.subresources:
            resources.append(
                {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": _sub_kind(rt, sub),
                    "verbs": _sub_verbs(sub),
                }
            )
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.groups().get(group)
    if not versions:
        return None
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": gvs,
        "preferredVersion": gvs[0],
    }


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [api_group(registry, g) for g in registry.groups() if g]
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [{k: v for k, v in g.items() if k not in ("kind", "apiVersion")} for g in groups if g],
    }


def aggregated(registry: Registry, *, legacy: bool) -> dict[str, Any]:
    items = []
    for group, versions in registry.groups().items():
        if (group == "") != legacy:
            continue
        items.append(
            {
                "metadata": {"name": group},
                "versions": [_aggregated_version(registry, group, v) for v in versions],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def _aggregated_version(registry: Registry, group: str, version: str) -> dict[str, Any]:
    resources = []
    for rt in registry.all():
        if (rt.group, rt.version) != (group, version):
            continue
        gvk = {"group": group, "version": version, "kind": rt.kind}
        entry: dict[str, Any] = {
            "resource": rt.plural,
            "responseKind": gvk,
            "scope": "Namespaced" if rt.namespaced else "Cluster",
            "singularResource": rt.singular,
            "verbs": _verbs(rt),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        if rt.subresources:
            entry["subresources"] = [
                {"subresource": s, "responseKind": {**gvk, "kind": _sub_kind(rt, s)}, "verbs": _sub_verbs(s)}
                for s in rt.subresources
            ]
        resources.append(entry)
    return {"version": version, "resources": resources, "freshness": "Current"}


OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
# What client-go asks for; the answer's type has no "@", which Go's mime parser refuses (kube-openapi
# pkg/handler/handler.go: subTypeProtobufDeprecated is accepted, subTypeProtobuf is answered).


def openapi_v2(accept: str) -> tuple[bytes, str]:
    """`/openapi/v2`: a Swagger 2.0 document without definitions, as protobuf (all client-go's
    `OpenAPISchema` reads) or JSON.

    kubectl validates a `kind: List` on the client side with this document, whatever /openapi/v3
    offers (k8s.io/kubectl pkg/validation: a List is never sent to the server's field validation),
    and a 404 fails the whole apply. A schema it cannot find is not validated, so an empty document
    leaves the checking to the server, which validates every item it is sent.
    """
    if "protobuf" in accept:
        info = _pb(1, b"Kubernetes") + _pb(2, VERSION["gitVersion"].encode())
        # gnostic openapiv2/OpenAPIv2.proto: Document.swagger = 1, .info = 2, .paths = 8
        return _pb(1, b"2.0") + _pb(2, info) + _pb(8, b""), OPENAPI_V2_PROTOBUF
    document = {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
        "paths": {},
    }
    return json.dumps(document).encode(), "application/json"


def _pb(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def openapi_root(registry: Registry) -> dict[str, Any]:
    paths = {}
    for group, versions in registry.groups().items():
        for v in versions:
            gv = f"api/{v}" if not group else f"apis/{group}/{v}"
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={len(registry.all())}"}
    return {"paths": paths}


def openapi_group_version(registry: Registry, group: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    prefix = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    params = [
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
    ]
    for rt in registry.all():
        if (rt.group, rt.version) != (group, version):
            continue
        gvk = {"group": group, "version": version, "kind": rt.kind}
        scope = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
        op = {
            "x-kubernetes-group-version-kind": gvk,
            "parameters": params,
            "responses": {"200": {"description": "OK"}},
        }
        paths[scope] = {"post": op, "get": op}
        paths[f"{scope}/{{name}}"] = {"get": op, "put": op, "patch": op, "delete": op}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }
