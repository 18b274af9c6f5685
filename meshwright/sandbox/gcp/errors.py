"""Errors of the GCP emulator, in Google's JSON error envelope. Tests import the messages."""

from __future__ import annotations

from typing import Any

CLUSTER_EXISTS = "Already exists: projects/{project}/locations/{location}/clusters/{name}."
CLUSTER_NOT_FOUND = "Not found: projects/{project}/locations/{location}/clusters/{name}."
OPERATION_NOT_FOUND = "Not found: projects/{project}/locations/{location}/operations/{name}."
# GKE's words for a setResourceLabels whose labelFingerprint is not the cluster's current one
# (as users report it: crossplane-contrib/provider-gcp#477, hashicorp/terraform-provider-google#5608).
LABEL_FINGERPRINT_MISMATCH = (
    "Labels could not be set due to fingerprint mismatch; try again with the proper fingerprint: "
    'incorrect fingerprint supplied was "{given}", the expected one is "{expected}".'
)
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
# Compute's answer for a regional or zonal resource it does not know, e.g. "The resource
# 'projects/P/regions/R/subnetworks/S' was not found" (kelseyhightower/kubernetes-the-hard-way#653).
RESOURCE_PATH_NOT_FOUND = "The resource '{path}' was not found"
RESOURCE_PATH_EXISTS = "The resource '{path}' already exists"

# GKE's refusals of a create that its surroundings cannot hold, as GKE words them:
# a cluster on a custom mode network without a subnetwork (terraform output quoting
# `Error 400: Network "zero" uses manual subnet mode and requires specifying a subnetwork.`),
MANUAL_SUBNET_MODE = 'Network "{network}" uses manual subnet mode and requires specifying a subnetwork.'
# a subnetwork that is not in the cluster's region of that network (hashicorp/terraform-provider-google#7895),
SUBNETWORK_INVALID = 'Subnetwork "projects/{project}/regions/{region}/subnetworks/{subnetwork}" is not valid for Network "{network}".'
# a subnet that already holds 30 secondary ranges, a hard limit (cilium/cilium#18821),
SECONDARY_RANGES_FULL = (
    'This operation will exceed max secondary ranges per subnetwork (30) for subnet "{subnetwork}", '
    "consider reusing existing secondary ranges or use a different subnetwork."
)
# a node service account that does not exist (midl-dev/tezos-on-gke#45, sassoftware/viya4-iac-gcp#148),
NODE_ACCOUNT_MISSING = 'Service account "{email}" does not exist.'
# a machine type Compute does not know (kubernetes/kubernetes#12985),
MACHINE_TYPE_MISSING = 'machine type "{machine_type}" does not exist.'
# and a request that regional quota cannot hold: 403 at once, one line per metric short, numbered
# when several are ("(1) insufficient regional quota ...", kaiwaehner/hivemq-...#48), with ErrorInfo
# reason INSUFFICIENT_QUOTA_REGIONAL of domain container.googleapis.com (a terraform output of GKE's answer).
QUOTA_REGIONAL = (
    "Insufficient regional quota to satisfy request: resource \"{metric}\": request requires '{asked:.1f}' "
    "and is short '{short:.1f}'. project has a quota of '{limit:.1f}' with '{available:.1f}' available. "
    "View and manage quotas at https://console.cloud.google.com/iam-admin/quotas?usage=USED&project={project}."
)

# IAM v1 (pulumi/pulumi-google-native#836: "Error 404: Unknown service account").
ACCOUNT_UNKNOWN = "Unknown service account"
ACCOUNT_EXISTS = "Service account {email} already exists within project projects/{project}."
ACCOUNT_ID_INVALID = (
    "Invalid value for field 'account_id': {account_id}. Must be 6 to 30 lowercase letters, digits or "
    "hyphens, starting with a letter and not ending with a hyphen."
)
# Service Usage, for a name that is no Google API ("gcloud services enable" with a typo).
SERVICE_UNKNOWN = "Not found or permission denied for service(s): {service}."
# Google's front end to a call of an API the project has not enabled (terraform-provider-google's FAQ,
# "403 Service API disabled"); the ErrorInfo is google/api/error_reason.proto's SERVICE_DISABLED example.
SERVICE_DISABLED = (
    "{title} has not been used in project {number} before or it is disabled. Enable it by visiting "
    "{url} then retry. If you enabled this API recently, wait a few minutes for the action to "
    "propagate to our systems and retry."
)
ACTIVATION_URL = "https://console.developers.google.com/apis/api/{service}/overview?project={number}"

# A firewall rule with more ranges than Compute takes in one (firewalls.MAX_SOURCE_RANGES): a 400
# in Compute's "Invalid value for field" form; the wording after the field is ours (Google's exact
# text for this case is not in the references we have).
TOO_MANY_RANGES = "Invalid value for field '{field}': too many ranges; a firewall rule takes at most {limit}."

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
    """An error answer: HTTP status, gRPC-style status name, a message and any `details` objects."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        status: str | None = None,
        details: list[dict[str, Any]] | None = None,
        reason: tuple[str, str] | None = None,  # Compute's errors[] (domain, reason), when not the usual
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or _STATUS.get(code, "UNKNOWN")
        self.details = details or []
        self.reason = reason

    def envelope(self, api: str) -> dict[str, Any]:
        extra = {"details": self.details} if self.details else {}
        if api == "compute" or self.reason:
            domain, reason = self.reason or ("global", _COMPUTE_REASON.get(self.code, "backendError"))
            errors = [{"message": self.message, "domain": domain, "reason": reason}]
            status = {"status": self.status} if self.reason else {}
            return {
                "error": {"code": self.code, "message": self.message, "errors": errors, **status, **extra}
            }
        return {"error": {"code": self.code, "message": self.message, "status": self.status, **extra}}


def error_info(reason: str, domain: str, **metadata: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": domain,
    }
    return info | ({"metadata": metadata} if metadata else {})


def service_disabled(service: str, title: str, number: str) -> GcpError:
    """403 from Google's front end, the same for every API: PERMISSION_DENIED, errors[] reason
    accessNotConfigured (what older clients print) and ErrorInfo SERVICE_DISABLED (what newer read)."""
    url = ACTIVATION_URL.format(service=service, number=number)
    message = SERVICE_DISABLED.format(title=title, number=number, url=url)
    metadata = {
        "service": service,
        "consumer": f"projects/{number}",
        "activationUrl": url,
        "serviceTitle": title,
    }
    details = [
        error_info("SERVICE_DISABLED", "googleapis.com", **metadata),
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message},
    ]
    return GcpError(
        403,
        message,
        status="PERMISSION_DENIED",
        details=details,
        reason=("usageLimits", "accessNotConfigured"),
    )


def quota_regional(lines: list[str]) -> GcpError:
    message = (
        lines[0]
        if len(lines) == 1
        else "\n" + "\n".join(f"({i}) {line[0].lower()}{line[1:]}" for i, line in enumerate(lines, 1))
    )
    details = [error_info("INSUFFICIENT_QUOTA_REGIONAL", "container.googleapis.com")]
    return GcpError(403, message, status="PERMISSION_DENIED", details=details)


def failed_precondition(message: str) -> GcpError:
    return GcpError(400, message, status="FAILED_PRECONDITION")


def invalid(message: str) -> GcpError:
    return GcpError(400, message, status="INVALID_ARGUMENT")
