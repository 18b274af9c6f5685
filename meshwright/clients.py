"""The one place that builds Google, Kubernetes and Helm clients for a target.

`gke` uses application default credentials and Google's endpoints; `sandbox` uses REST with
anonymous credentials against the local sandbox, and the sandbox operator's token for the
clusters. Nothing else in meshwright knows which target it is talking to.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import compute_v1, container_v1

from meshwright.errors import PermissionDenied, SandboxError
from meshwright.sandbox import store
from meshwright.sandbox.kube.fleet import operator_token
from meshwright.sandbox.settings import Layout, state_dir
from meshwright.spec import Target
from meshwright.translate import google_call

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# At most this many GKE/Compute calls at once from one process, so 20 clusters do not become a
# burst of 20 x polling against the API quota.
API_CONCURRENCY_ENV = "MESHWRIGHT_API_CONCURRENCY"
DEFAULT_API_CONCURRENCY = 4
POLL_SECONDS = {Target.GKE: 10.0, Target.SANDBOX: 0.1}
GKE_AUTH_PLUGIN = {
    "apiVersion": "client.authentication.k8s.io/v1beta1",
    "command": "gke-gcloud-auth-plugin",
    "installHint": "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
    "provideClusterInfo": True,
    "interactiveMode": "IfAvailable",
}
TokenSource = Callable[[], str]


@dataclass(frozen=True)
class Cloud:
    """The SDK clients for one target, and how to authenticate to its clusters."""

    target: Target
    container: container_v1.ClusterManagerClient
    firewalls: compute_v1.FirewallsClient
    operations: compute_v1.GlobalOperationsClient
    networks: compute_v1.NetworksClient
    kube_token: TokenSource
    poll_seconds: float
    api_slots: threading.BoundedSemaphore

    @contextmanager
    def call(self, *, cluster: str | None, step: str) -> Iterator[None]:
        """One Google API call: hold one of the process's API slots, translate what the SDK raises."""
        with self.api_slots, google_call(cluster=cluster, step=step):
            yield

    def kubeconfig_user(self) -> dict[str, Any]:
        """How a kubeconfig user authenticates: gcloud's plugin on GKE, the operator token on the sandbox."""
        if self.target is Target.GKE:
            return {"exec": GKE_AUTH_PLUGIN}
        return {"token": self.kube_token()}


def cloud(target: Target, *, sandbox_state: Path | None = None) -> Cloud:
    """Clients for `target`; cached per process, because Prefect tasks call this a lot."""
    return _cloud(target, state_dir(sandbox_state) if target is Target.SANDBOX else None)


@functools.lru_cache(maxsize=8)
def _cloud(target: Target, root: Path | None) -> Cloud:
    if target is Target.SANDBOX:
        assert root is not None
        return _sandbox(root)
    return _gke()


def _clients(
    target: Target, credentials: Credentials, options: ClientOptions | None, token: TokenSource
) -> Cloud:
    kw = {"credentials": credentials, "transport": "rest", "client_options": options}
    return Cloud(
        target=target,
        container=container_v1.ClusterManagerClient(**kw),  # type: ignore[arg-type]
        firewalls=compute_v1.FirewallsClient(**kw),  # type: ignore[arg-type]
        operations=compute_v1.GlobalOperationsClient(**kw),  # type: ignore[arg-type]
        networks=compute_v1.NetworksClient(**kw),  # type: ignore[arg-type]
        kube_token=token,
        poll_seconds=POLL_SECONDS[target],
        api_slots=threading.BoundedSemaphore(
            int(os.environ.get(API_CONCURRENCY_ENV, DEFAULT_API_CONCURRENCY))
        ),
    )


def _sandbox(root: Path) -> Cloud:
    info = store.read_json(Layout(root).daemon, {})
    if not info.get("gcp"):
        raise SandboxError(f"no sandbox has run with state {root}; start one with `meshwright sandbox start`")
    token = operator_token(Layout(root))
    return _clients(
        Target.SANDBOX, AnonymousCredentials(), ClientOptions(api_endpoint=info["gcp"]), lambda: token
    )


def _gke() -> Cloud:
    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM])
    except google.auth.exceptions.DefaultCredentialsError as e:
        raise PermissionDenied(
            "no Google credentials found: run `gcloud auth application-default login`, or set "
            f"GOOGLE_APPLICATION_CREDENTIALS to a service-account key file ({e.__class__.__name__})"
        ) from None
    request = google.auth.transport.requests.Request()

    def token() -> str:
        if not credentials.valid:
            credentials.refresh(request)
        return str(credentials.token)

    return _clients(Target.GKE, credentials, None, token)


def reset_cache() -> None:
    """Forget cached clients (after a sandbox restart moved its endpoint)."""
    _cloud.cache_clear()
