"""From what a client sent to the object a write would store: body decoding, patches, Go's field types.

A real server decodes into typed structs: a create or update whose fields have the wrong JSON type
is a 400; a patch whose result does not decode is a 422 on field `patch`.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.schema import fielderrors, fieldtypes, openapi, shapes
from meshwright.sandbox.kube.status import KubeError, bad_request
from meshwright.sandbox.kube.store import patch as p


def problem_of(rt: ResourceType, obj: dict[str, Any]) -> fieldtypes.TypeProblem | None:
    return fieldtypes.check(shapes.shape(rt.key, rt.kind), obj)[1]


UNSUPPORTED_PATCH = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)


def patched(rt: ResourceType, current: dict[str, Any], patch_body: Any, content_type: str) -> Any:
    if content_type == "application/json-patch+json":
        if not isinstance(patch_body, list) or not all(isinstance(op, dict) for op in patch_body):
            kind = "Operation" if isinstance(patch_body, list) else "Patch"
            got = "string" if isinstance(patch_body, str) else type(patch_body).__name__
            raise bad_request(f"json: cannot unmarshal {got} into Go value of type jsonpatch.{kind}")
        return p.json_patch(current, patch_body)
    if not isinstance(patch_body, dict):
        raise bad_request("the patch must be a JSON object")
    if content_type == "application/merge-patch+json":
        return p.merge_patch(current, patch_body)
    if content_type == "application/strategic-merge-patch+json":
        if rt.custom:
            raise KubeError(415, UNSUPPORTED_PATCH)
        return p.strategic_merge(current, patch_body)
    raise KubeError(
        415, f"the body of the request was in an unknown format: {content_type or 'no content type'}"
    )


def decoded(rt: ResourceType, body: dict[str, Any]) -> dict[str, Any]:
    """`body` as the server's decoder leaves it; 400 when a field has the wrong JSON type."""
    cleaned, problem = fieldtypes.check(shapes.shape(rt.key, rt.kind), body)
    if problem is not None:
        raise bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {problem.message()}'
        )
    return cleaned


def patched_shape(rt: ResourceType, obj: Any) -> dict[str, Any]:
    """A patch result that does not decode is the patch's fault: 422 on field `patch`, as a real server says."""
    if not isinstance(obj, dict):
        problem_text = (
            f"json: cannot unmarshal {type(obj).__name__} into Go value of type map[string]interface {{}}"
        )
    else:
        cleaned, problem = fieldtypes.check(shapes.shape(rt.key, rt.kind), obj)
        if problem is None and isinstance(cleaned.get("metadata", {}), dict):
            return cleaned
        problem_text = problem.message() if problem else "metadata must be an object"
    error = fielderrors.invalid("patch", json.dumps(obj)[:256], problem_text)
    raise KubeError(
        422,
        f'{rt.kind} "" is invalid: {error}',
        details={"kind": rt.kind, "group": rt.group, "causes": [error.cause()]},
    )


def patch_body(body: bytes, content_type: str) -> Any:
    """A PATCH body: YAML for apply and *yaml types, JSON otherwise; 400 when it does not parse."""
    if not body.strip():
        return None
    if content_type == "application/apply-patch+yaml" or content_type.endswith("yaml"):
        try:
            return yaml.safe_load(body)
        except (yaml.YAMLError, RecursionError) as e:
            raise bad_request(f"error decoding YAML: {str(e)[:200]}") from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise bad_request(f"error decoding JSON: {str(e)[:200]}") from None


def against_schema(rt: ResourceType, obj: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    """A custom resource as its CRD's schema leaves it (defaults in, unknown fields out), or its 400/422."""
    outcome = openapi.check(rt.schema, obj)
    if strict and outcome.unknown:
        raise bad_request(
            "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in outcome.unknown)
        )
    if outcome.errors:
        raise fielderrors.rejected(rt, (obj.get("metadata") or {}).get("name", ""), outcome.errors)
    result: dict[str, Any] = outcome.obj
    return result
