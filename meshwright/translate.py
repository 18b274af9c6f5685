"""SDK errors -> meshwright's error tree, at the edge. Retry decisions look at the result only."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator

import requests
from google.api_core import exceptions as gx
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError

from meshwright import errors as e

# GKE answers 400 FAILED_PRECONDITION while another operation runs on the cluster: worth a retry.
# The REST transport prefixes messages with "POST http://host/path?query: "; the reader needs the rest.
_REQUEST_PREFIX = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) \S+: ")
_BUSY_MARKERS = ("is currently", "incompatible operation", "Please wait and try again")


def from_google(error: gx.GoogleAPICallError, *, cluster: str | None, step: str) -> e.MeshwrightError:
    raw = getattr(error, "message", None) or str(error)
    message = e.truncate(_REQUEST_PREFIX.sub("", raw))
    kind: type[e.MeshwrightError]
    if isinstance(
        error,
        gx.TooManyRequests
        | gx.ServiceUnavailable
        | gx.InternalServerError
        | gx.GatewayTimeout
        | gx.DeadlineExceeded,
    ) or (isinstance(error, gx.BadRequest) and any(m in message for m in _BUSY_MARKERS)):
        kind = e.TransientError
    elif isinstance(error, gx.NotFound):
        kind = e.NotFound
    elif isinstance(error, gx.Conflict):
        kind = e.Conflict
    elif isinstance(error, gx.Forbidden | gx.Unauthorized):
        kind = e.QuotaExceeded if "quota" in message.lower() else e.PermissionDenied
    else:
        kind = e.InvalidRequest
    return kind(message, cluster=cluster, step=step)


def from_kube(
    error: ApiException | DynamicApiError, *, cluster: str, step: str, what: str = ""
) -> e.MeshwrightError:
    reason = str(getattr(error, "reason", "") or "")
    with contextlib.suppress(ValueError, AttributeError):
        reason = json.loads(getattr(error, "body", None) or "{}").get("message") or reason
    message = e.truncate(
        f"{what}: {reason} (HTTP {getattr(error, 'status', '?')})"
        if what
        else f"{reason} (HTTP {getattr(error, 'status', '?')})"
    )
    status = int(getattr(error, "status", 0) or 0)
    kind: type[e.MeshwrightError] = e.InvalidRequest
    if status in (0, 429, 500, 502, 503, 504):
        kind = e.TransientError
    elif status == 404:
        kind = e.NotFound
    elif status == 409:
        kind = e.Conflict
    elif status in (401, 403):
        kind = e.PermissionDenied
    return kind(message, cluster=cluster, step=step)


def from_connection(error: Exception, *, cluster: str | None, step: str, endpoint: str) -> e.MeshwrightError:
    return e.Unreachable(
        f"cannot reach {endpoint}: {e.truncate(str(error), 160)}", cluster=cluster, step=step
    )


@contextlib.contextmanager
def google_call(*, cluster: str | None, step: str, endpoint: str = "the Google API") -> Iterator[None]:
    """Run a google-cloud call; what it raises comes out as meshwright's own errors."""
    try:
        yield
    except gx.GoogleAPICallError as error:
        raise from_google(error, cluster=cluster, step=step) from error
    except (requests.ConnectionError, requests.Timeout, gx.RetryError) as error:
        raise from_connection(error, cluster=cluster, step=step, endpoint=endpoint) from error
