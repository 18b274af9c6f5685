"""Kubernetes `Status` error bodies, as the real API server writes them."""

from __future__ import annotations

from typing import Any

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class KubeError(Exception):
    def __init__(
        self, code: int, message: str, *, reason: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message = code, message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def body(self) -> dict[str, Any]:
        return status_body(self.code, self.message, reason=self.reason, details=self.details)


def status_body(
    code: int, message: str, *, reason: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:  # NewForbidden for a URL path sends empty details: {}
        body["details"] = details
    return body


def not_found(resource: str, name: str, group: str = "") -> KubeError:
    qualified = f"{resource}.{group}" if group else resource
    return KubeError(
        404, f'{qualified} "{name}" not found', details={"name": name, "group": group, "kind": resource}
    )


def already_exists(resource: str, name: str, group: str = "") -> KubeError:
    qualified = f"{resource}.{group}" if group else resource
    return KubeError(
        409,
        f'{qualified} "{name}" already exists',
        reason="AlreadyExists",
        details={"name": name, "group": group, "kind": resource},
    )


def conflict(resource: str, name: str, group: str = "") -> KubeError:
    qualified = f"{resource}.{group}" if group else resource
    return KubeError(
        409,
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details={"name": name, "group": group, "kind": resource},
    )


def bad_request(message: str) -> KubeError:
    return KubeError(400, message)


def invalid(kind: str, name: str, message: str) -> KubeError:
    return KubeError(422, f'{kind} "{name}" is invalid: {message}', details={"name": name, "kind": kind})
