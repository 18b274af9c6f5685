"""SDK errors land in meshwright's tree: transient ones retry, the rest fail at once."""

from __future__ import annotations

import pickle

import pytest
from google.api_core import exceptions as gx
from kubernetes.client.exceptions import ApiException

from meshwright import errors as e
from meshwright.translate import from_google, from_kube


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (gx.TooManyRequests("slow down"), e.TransientError),
        (gx.ServiceUnavailable("down"), e.TransientError),
        (
            gx.BadRequest(
                "Operation operation-1 is currently creating cluster x. Please wait and try again once it is done."
            ),
            e.TransientError,
        ),
        (gx.BadRequest("Invalid value for field 'cluster.name'"), e.InvalidRequest),
        (gx.Forbidden("Permission 'container.clusters.create' denied"), e.PermissionDenied),
        (gx.Forbidden("Quota 'CPUS' exceeded. Limit: 24.0 in region us-central1."), e.QuotaExceeded),
        (
            gx.Forbidden(
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service "
                "'compute.googleapis.com' for consumer 'project_number:1'."
            ),
            e.TransientError,
        ),
        (gx.Forbidden("Rate Limit Exceeded", errors=[{"reason": "rateLimitExceeded"}]), e.TransientError),
        (
            gx.Forbidden("User Rate Limit Exceeded", errors=[{"reason": "userRateLimitExceeded"}]),
            e.TransientError,
        ),
        (gx.NotFound("gone"), e.NotFound),
        (gx.Conflict("exists"), e.Conflict),
    ],
)
def test_google_errors(error: gx.GoogleAPICallError, kind: type[e.MeshwrightError]) -> None:
    translated = from_google(error, cluster="east", step="create_cluster")
    assert type(translated) is kind
    assert str(translated).startswith("create_cluster [east]: ")


def test_request_line_is_stripped_from_rest_messages() -> None:
    error = gx.ServiceUnavailable(
        "POST http://127.0.0.1:1/v1/projects/p/locations/l/clusters?%24alt=json: The service is currently unavailable."
    )
    assert str(from_google(error, cluster="c", step="s")) == "s [c]: The service is currently unavailable."


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (503, e.TransientError),
        (429, e.TransientError),
        (404, e.NotFound),
        (409, e.Conflict),
        (401, e.PermissionDenied),
        (422, e.InvalidRequest),
    ],
)
def test_kubernetes_errors(status: int, kind: type[e.MeshwrightError]) -> None:
    error = ApiException(status=status, reason="Reason")
    error.body = '{"kind":"Status","message":"configmaps \\"x\\" already exists"}'
    translated = from_kube(error, cluster="west", step="apply", what="ConfigMap/x")
    assert type(translated) is kind
    assert 'ConfigMap/x: configmaps "x" already exists' in str(translated)


def test_errors_survive_pickling_as_prefect_stores_them() -> None:
    original = e.OperationFailed("quota", cluster="east", step="wait_cluster")
    copy = pickle.loads(pickle.dumps(original))
    assert (type(copy), str(copy)) == (e.OperationFailed, "wait_cluster [east]: quota")
    invalid = pickle.loads(pickle.dumps(e.SpecInvalid([e.SpecProblem("name", "bad")], source="x.yaml")))
    assert str(invalid) == "x.yaml is invalid:\n  name: bad"


def test_a_refused_websocket_handshake_is_translated_by_its_own_status() -> None:
    error = ApiException(
        status=0,
        reason="Handshake status 403 Forbidden -+-+- {'content-type': 'application/json'} -+-+- "
        'b\'{"kind":"Status","message":"pods \\"istiod-1\\" is forbidden: cannot create pods/portforward"}\'',
    )
    translated = from_kube(error, cluster="central", step="verify", what="port-forward")
    assert type(translated) is e.PermissionDenied
    assert (
        translated.message
        == 'port-forward: pods "istiod-1" is forbidden: cannot create pods/portforward (HTTP 403)'
    )
