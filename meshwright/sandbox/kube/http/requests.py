"""Reading what a client sent: bearer tokens, bodies in JSON, YAML or protobuf, and typed fields.

Every failure here is the client's: 400 or 415 with the real server's words, never an exception
that would turn into a 500.
"""

from __future__ import annotations

from typing import Any

import yaml

from meshwright.sandbox.http import Request
from meshwright.sandbox.kube.http import protobuf
from meshwright.sandbox.kube.status import KubeError, bad_request
from meshwright.sandbox.kube.store.crud import WriteOptions

NOT_FOUND = "the server could not find the requested resource"
BODY_TYPES = ("", "application/json", "application/yaml", "*/*")


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer ...` header; the scheme is case-insensitive (RFC 7235)."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def request_body(r: Request) -> Any:
    """The decoded body of a create or update, whatever its media type."""
    if r.content_type == "application/vnd.kubernetes.protobuf":
        return protobuf.decode(r.body)
    if r.content_type not in BODY_TYPES:
        raise KubeError(
            415,
            "the body of the request was in an unknown format - accepted media types include: "
            f"application/json, application/yaml (got {r.content_type})",
        )
    try:
        return yaml.safe_load(r.body) if r.content_type == "application/yaml" else r.json()
    except (ValueError, yaml.YAMLError, RecursionError) as e:
        raise bad_request(f"error decoding the body: {str(e)[:200]}") from None


def object_body(r: Request) -> dict[str, Any]:
    """A body that must be a JSON object (or empty); anything else is the client's error."""
    body = request_body(r)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_request(f"the body must be a JSON object, not {type(body).__name__}")
    return body


def int_field(spec: dict[str, Any], name: str, default: int, *, kind: str) -> int:
    value = spec.get(name)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(
            f'{kind} in version "v1" cannot be handled as a {kind}: json: cannot unmarshal '
            f"{type(value).__name__} into Go struct field {kind}Spec.spec.{name} of type int64"
        )
    return value


def manager_from_agent(agent: str) -> str:
    """What the real API server records as manager when none is given: the user agent's program."""
    return agent.split("/")[0] or "unknown"


def propagation(r: Request) -> str:
    """DeleteOptions.propagationPolicy, from the query or the body (kubectl --cascade=orphan sends a body)."""
    if r.query.get("propagationPolicy"):
        return r.query["propagationPolicy"]
    try:
        body = r.json() if r.body.strip() else None
    except ValueError:
        return ""
    policy = body.get("propagationPolicy") if isinstance(body, dict) else None
    if body is not None and isinstance(body, dict) and body.get("orphanDependents") is True:
        return "Orphan"
    return policy if isinstance(policy, str) else ""


def group_version(parts: list[str]) -> tuple[str, str, list[str]]:
    if parts[0] == "api" and len(parts) >= 2:
        return "", parts[1], parts[2:]
    if parts[0] == "apis" and len(parts) >= 3:
        return parts[1], parts[2], parts[3:]
    raise KubeError(404, NOT_FOUND)


def options(r: Request, sub: str | None = None, *, apply: bool = False) -> WriteOptions:
    """Field manager (the user agent's program when none is given; apply must name one), dry run, subresource."""
    agent = "" if apply else manager_from_agent(r.headers.get("user-agent", ""))
    manager = r.query.get("fieldManager") or agent
    return WriteOptions(
        manager=manager,
        subresource="status" if sub == "status" else None,
        dry_run=r.query.get("dryRun") == "All",
        force=r.query.get("force") == "true",
        strict=r.query.get("fieldValidation") == "Strict",
    )
