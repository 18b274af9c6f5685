"""Errors of the GCP emulator, in Google's JSON error envelope. Tests import the messages."""

from __future__ import annotations

from typing import Any

CLUSTER_EXISTS = "Already exists: projects/{project}/locations/{location}/clusters/{name}."
CLUSTER_NOT_FOUND = "Not found: projects/{project}/locations/{location}/clusters/{name}."
OPERATION_NOT_FOUND = "Not found: projects/{project}/locations/{location}/operations/{name}."
OPERATION_IN_PROGRESS = (
    "Operation {operation} is currently {verb} cluster {name}. Please wait and try again once it is done."
)
NETWORK_MISSING = 'Network "{network}" does not exist.'
OVERLAP = (
    "Google Compute Engine: Invalid value for field 'resource.secondaryIpRanges[0].ipCidrRange': "
    "'{cidr}'. Invalid IPCidrRange: {cidr} conflicts with existing subnetwork range '{other}' "
    "of cluster '{owner}'."
)
RESOURCE_NOT_FOUND = "The resource 'projects/{project}/global/{collection}/{name}' was not found"
RESOURCE_EXISTS = "The resource 'projects/{project}/global/{collection}/{name}' already exists"

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",  # Google's front end: "Request payload size exceeds the limit: ..."
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_COMPUTE_REASON = {
    400: "invalid",
    403: "forbidden",
    404: "notFound",
    409: "alreadyExists",
    429: "rateLimitExceeded",
}


class GcpError(Exception):
    """An error answer: HTTP status, gRPC-style status name and a message."""

    def __init__(self, code: int, message: str, *, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or _STATUS.get(code, "UNKNOWN")

    def envelope(self, api: str) -> dict[str, Any]:
        if api == "compute":
            reason = _COMPUTE_REASON.get(self.code, "backendError")
            return {
                "error": {
                    "code": self.code,
                    "message": self.message,
                    "errors": [{"message": self.message, "domain": "global", "reason": reason}],
                }
            }
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def failed_precondition(message: str) -> GcpError:
    return GcpError(400, message, status="FAILED_PRECONDITION")


def invalid(message: str) -> GcpError:
    return GcpError(400, message, status="INVALID_ARGUMENT")
