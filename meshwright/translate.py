"""Every outside system's failures -> meshwright's error tree, at the edge; the one module that does it.

Google's API (google-api-core, requests), Kubernetes (the client's ApiException, the dynamic
client's errors, and what urllib3 and the socket raise when a connection cannot be made or drops)
and helm (pyhelm3's errors, with helm's own message). Retry decisions look at the result only:
a dropped or refused connection is `Unreachable`, a TransientError, wherever it happens.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
from collections.abc import Iterator

import pyhelm3.errors as helm_errors
import requests
import urllib3.exceptions
from google.api_core import exceptions as gx
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError

from meshwright import errors as e

# GKE answers 400 FAILED_PRECONDITION while another operation runs on the cluster: worth a retry.
# The REST transport prefixes messages with "POST http://host/path?query: "; the reader needs the rest.
_REQUEST_PREFIX = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) \S+: ")
_BUSY_MARKERS = ("is currently", "incompatible operation", "Please wait and try again")
# Google answers a rate limit with 403 as often as with 429: reason rateLimitExceeded or
# userRateLimitExceeded (Cloud APIs' standard error reasons), or RATE_LIMIT_EXCEEDED (ErrorInfo), or
# "Quota exceeded for quota metric '...' and limit '... per minute ...'". They pass within a minute;
# a quota on resources (CPUS, IN_USE_ADDRESSES) does not.
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"}
_RATE_TEXT = re.compile(r"rate limit|per minute|per 100 seconds|per second", re.IGNORECASE)


# A call to an API the project has not enabled: 403 with ErrorInfo reason SERVICE_DISABLED and the
# service in its metadata (google/api/error_reason.proto), or, in Compute's older envelope, errors[]
# reason accessNotConfigured; the message names the API and the console page to enable it.
_DISABLED_REASONS = {"SERVICE_DISABLED", "accessNotConfigured"}
_SERVICE_IN_URL = re.compile(r"/apis/api/([a-z0-9.-]+\.googleapis\.com)/overview\?project=([\w.:-]+)")


def from_google(error: gx.GoogleAPICallError, *, cluster: str | None, step: str) -> e.MeshwrightError:
    raw = getattr(error, "message", None) or str(error)
    message = e.truncate(_REQUEST_PREFIX.sub("", raw))
    kind: type[e.MeshwrightError]
    if isinstance(error, gx.Forbidden) and _reasons(error) & _DISABLED_REASONS:
        return e.ServiceDisabled(_enable_hint(error, raw), cluster=cluster, step=step)
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
    elif isinstance(error, gx.Forbidden) and _rate_limited(error, message):
        kind = e.TransientError
    elif isinstance(error, gx.Forbidden | gx.Unauthorized):
        kind = e.QuotaExceeded if "quota" in message.lower() else e.PermissionDenied
    else:
        kind = e.InvalidRequest
    return kind(message, cluster=cluster, step=step)


def _reasons(error: gx.GoogleAPICallError) -> set[str | None]:
    return {getattr(error, "reason", None)} | {
        item.get("reason") for item in getattr(error, "errors", None) or [] if isinstance(item, dict)
    }


def _rate_limited(error: gx.GoogleAPICallError, message: str) -> bool:
    return bool(_reasons(error) & _RATE_REASONS) or bool(_RATE_TEXT.search(message))


def _enable_hint(error: gx.GoogleAPICallError, raw: str) -> str:
    """Which API is off in which project, and the command that turns it on."""
    metadata = getattr(error, "metadata", None) or {}
    found = _SERVICE_IN_URL.search(raw)
    service = metadata.get("service") or (found[1] if found else "the API")
    project = str(metadata.get("consumer") or "").removeprefix("projects/") or (found[2] if found else "")
    title = metadata.get("serviceTitle") or service
    where = f" in project {project}" if project else ""
    flag = f" --project {project}" if project else ""
    return (
        f"{title} ({service}) is not enabled{where}: run `gcloud services enable {service}{flag}`, "
        "wait a minute for it to take effect, and run again"
    )


# The python client reports a refused WebSocket handshake (port-forward, exec) as ApiException
# (status=0, reason="Handshake status 403 Forbidden -+-+- {headers} -+-+- b'{body}'")
# (kubernetes/stream/ws_client.py): its own status and body are read from there.
_HANDSHAKE = re.compile(r"Handshake status (\d{3})")


def _handshake(error: ApiException | DynamicApiError) -> ApiException | DynamicApiError:
    found = _HANDSHAKE.search(str(getattr(error, "reason", "") or ""))
    if getattr(error, "status", None) or not found:
        return error
    body = str(error.reason).rsplit("-+-+- ", 1)[-1].strip()
    answer = ApiException(status=int(found[1]), reason=found[0])
    answer.body = body[2:-1] if body.startswith(("b'", 'b"')) else body
    return answer


def from_kube(
    error: ApiException | DynamicApiError, *, cluster: str, step: str, what: str = ""
) -> e.MeshwrightError:
    error = _handshake(error)
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


# What the kubernetes client lets through when there is no HTTP answer at all: urllib3's errors
# (MaxRetryError for a refused port, ProtocolError for a dropped connection), http.client's
# (an answer cut short), and the socket's own (OSError: reset, timeout, TLS).
CONNECTION_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


@contextlib.contextmanager
def kube_call(
    *, cluster: str, step: str, what: str = "", endpoint: str = "the cluster's API"
) -> Iterator[None]:
    """Kubernetes calls against one cluster; what they raise comes out as meshwright's own errors."""
    try:
        yield
    except (ApiException, DynamicApiError) as error:
        raise from_kube(error, cluster=cluster, step=step, what=what) from error
    except CONNECTION_ERRORS as error:
        raise from_connection(error, cluster=cluster, step=step, endpoint=endpoint) from error


def from_connection(error: Exception, *, cluster: str | None, step: str, endpoint: str) -> e.MeshwrightError:
    reason = _connection_reason(error)
    kind = e.Unresponsive if reason == "timed out" else e.Unreachable
    return kind(f"cannot reach {endpoint}: {reason}", cluster=cluster, step=step)


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _connection_reason(error: Exception) -> str:
    """What went wrong on the wire, in a few words ("connection refused"), not urllib3's repr."""
    text = str(getattr(error, "reason", None) or error)
    found = _ERRNO.search(text)
    if found:
        return found.group(1).strip().lower()
    if "EOF" in text or "RemoteDisconnected" in text or "closed connection" in text.lower():
        return "the connection was closed before an answer came"
    if "timed out" in text.lower():
        return "timed out"
    return e.truncate(text, 160)


@contextlib.contextmanager
def google_call(*, cluster: str | None, step: str, endpoint: str = "the Google API") -> Iterator[None]:
    """Run a google-cloud call; what it raises comes out as meshwright's own errors."""
    try:
        yield
    except gx.GoogleAPICallError as error:
        raise from_google(error, cluster=cluster, step=step) from error
    except (requests.ConnectionError, requests.Timeout, gx.RetryError) as error:
        raise from_connection(error, cluster=cluster, step=step, endpoint=endpoint) from error


# helm prints these when the API server or the network is briefly unavailable: worth a retry.
_TRANSIENT = (
    "connection refused",
    "connection reset",
    "i/o timeout",
    "tls handshake timeout",
    "eof",
    "the server is currently unable",
    "too many requests",
    "etcdserver",
    "http2: client connection lost",
    "another operation (install/upgrade/rollback) is in progress",
    # Two runs installing one release at once: the loser retries, then finds it deployed and adopts it.
    "release: already exists",
    "cannot re-use a name that is still in use",
)


# Helm 3.18.5's JSON-schema validator refuses the gateway chart's own values.schema.json.
_SCHEMA_HINT = "Helm >= 3.18.5 rejects Istio's gateway chart schema, istio/istio#57354: use Helm 3.17"


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "no output").removeprefix("Error: ")


def helm_message(error: helm_errors.Error) -> str:
    """Helm's own message, one line (helm puts the error last, after any warnings)."""
    return e.truncate(last_line(error.stderr.decode(errors="replace")))


def from_helm(error: helm_errors.Error, *, cluster: str | None, step: str) -> e.MeshwrightError:
    """pyhelm3's exception -> meshwright's error, keeping helm's message."""
    message = helm_message(error)
    lowered = message.lower()
    kind: type[e.MeshwrightError]
    if isinstance(error, helm_errors.ConnectionError) or any(m in lowered for m in _TRANSIENT):
        kind = e.TransientError
    elif isinstance(error, helm_errors.ChartNotFoundError):
        kind = e.NotFound
    elif isinstance(error, helm_errors.ResourceAlreadyExistsError):
        kind = e.Conflict
    elif "forbidden" in lowered or "unauthorized" in lowered:
        kind = e.PermissionDenied
    elif "timed out waiting for the condition" in lowered or "context deadline exceeded" in lowered:
        kind, message = e.OperationFailed, f"not ready in time: {message}"
    else:  # render failures, schema rejections, invalid resources: a person must change something
        kind = e.InvalidRequest
        if "_internal_defaults_do_not_set" in message:
            message += f" ({_SCHEMA_HINT})"
    return kind(message, cluster=cluster, step=step)


@contextlib.contextmanager
def helm_call(*, cluster: str | None, step: str) -> Iterator[None]:
    """Run pyhelm3 calls; what they raise comes out as meshwright's own errors."""
    try:
        yield
    except helm_errors.Error as error:
        raise from_helm(error, cluster=cluster, step=step) from error
