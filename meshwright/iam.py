"""A minimal IAM v1 client: `projects.serviceAccounts.get`, the one IAM call meshwright makes.

google-cloud-iam is not among meshwright's dependencies, and one GET does not warrant it: this is
that call over an authorized `requests` session, with errors raised as google-api-core's exceptions
(`from_http_response`, as the google-cloud REST transports do), so `translate.from_google` reads
them like any other Google error. Only the client factory builds one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from google.api_core import exceptions as gx

IAM_ENDPOINT = "https://iam.googleapis.com"
TIMEOUT = (10.0, 30.0)


class IamClient:
    """IAM v1 at `endpoint`, through `session` (an AuthorizedSession, or a plain one for the sandbox)."""

    def __init__(self, session: requests.Session, endpoint: str = IAM_ENDPOINT) -> None:
        self._session, self._endpoint = session, endpoint.rstrip("/")

    def get_service_account(self, *, project: str, email: str) -> dict[str, Any]:
        """The service account, or NotFound / Forbidden as IAM answers (403 also for an account the
        caller may not see, existing or not)."""
        url = (
            f"{self._endpoint}/v1/projects/{quote(project, safe='')}/serviceAccounts/{quote(email, safe='@')}"
        )
        response = self._session.get(url, timeout=TIMEOUT)
        if response.status_code >= 400:
            raise gx.from_http_response(response)
        body: dict[str, Any] = response.json()
        return body
