"""The one place that builds the Google (GKE, Compute) and Kubernetes API clients for a target.

Where a mesh is built is a `MeshwrightTarget` block, shaped like prefect-gcp's `GcpCredentials`:
`gke` uses a service-account key file or application default credentials and Google's endpoints;
`sandbox` uses REST with anonymous credentials against a local sandbox (found through its
contract: state directory, endpoint file, operator token) and the operator's token for the
clusters. Nothing else in meshwright knows which target it is talking to: what differs between
targets (endpoints, credentials, how long a load balancer or a rollout may take, where charts come
from) is carried by `Cloud`, and every Google, Kubernetes and helm client is made here.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import kubernetes.client
import requests
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import compute_v1, container_v1
from google.oauth2 import service_account
from prefect.blocks.core import Block
from pydantic import Field

from meshwright import helm, kube
from meshwright.errors import PermanentError, PermissionDenied
from meshwright.iam import IamClient
from meshwright.inflight import InFlight
from meshwright.models import ClusterAccess
from meshwright.sandbox import contract
from meshwright.settings import settings
from meshwright.spec import Target
from meshwright.translate import google_call, helm_call

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
USERINFO_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
# The scopes gke-gcloud-auth-plugin asks for (kubernetes/cloud-provider-gcp,
# cmd/gke-gcloud-auth-plugin/cred/default_credentials_token_provider.go): userinfo.email makes GKE
# see a service account or user by its email instead of its numeric uniqueID, so RBAC and IAM grants
# written for the email match; without it a key file, workload identity federation or user
# credentials get 403 from the clusters.
SCOPES = (CLOUD_PLATFORM, USERINFO_EMAIL)
ISTIO_CHARTS = "https://istio-release.storage.googleapis.com/charts"
GKE_AUTH_PLUGIN = {
    "apiVersion": "client.authentication.k8s.io/v1beta1",
    "command": "gke-gcloud-auth-plugin",
    "installHint": "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
    "provideClusterInfo": True,
    "interactiveMode": "IfAvailable",
}
TokenSource = Callable[[], str]


@dataclass(frozen=True)
class Waits:
    """How long a target's world takes: polling, a rollout, a load balancer's address, first traffic."""

    poll: float  # seconds between two looks at a long-running operation
    ready: float  # a release's Deployments rolled out
    address: float  # a LoadBalancer Service's address
    converge: float  # every placed workload answering through a fresh load balancer


WAITS = {
    # A new GCP load balancer takes a minute or two to answer, and istiod's pushes of remote
    # endpoints reach the gateways seconds later; the sandbox's routing snapshot is 0.3 s old at most.
    Target.GKE: Waits(poll=10.0, ready=600.0, address=600.0, converge=300.0),
    Target.SANDBOX: Waits(poll=0.1, ready=120.0, address=120.0, converge=10.0),
}
CHARTS_HINT = {
    Target.GKE: "check istio.charts and istio.version, and that this machine reaches the chart repository",
    Target.SANDBOX: "on the sandbox, omit istio.charts to use the bundled charts",
}


class MeshwrightTarget(Block):
    """Where a mesh is built and how meshwright authenticates there.

    Save one per place you build in and hand its name to the flows, as prefect-gcp's
    `GcpCredentials`: `MeshwrightTarget(target="gke").save("prod")`. It holds paths, never a key.
    """

    _block_type_name = "Meshwright Target"
    _block_type_slug = "meshwright-target"
    _description = "Where meshwright builds a mesh: the local sandbox (its state directory) or GKE."

    target: Target = Field(default=Target.SANDBOX, description="sandbox or gke")
    sandbox_state: str | None = Field(
        default=None,
        description="Sandbox state directory; default $MESHWRIGHT_SANDBOX_STATE, else .meshwright/sandbox.",
    )
    credentials_file: str | None = Field(
        default=None,
        description="GKE: a service-account key file; default: application default credentials.",
    )

    @classmethod
    def default(cls, target: Target) -> MeshwrightTarget:
        """The usual place for `target`, with the sandbox state directory chosen now."""
        state = str(contract.state_dir()) if target is Target.SANDBOX else None
        return cls(target=target, sandbox_state=state)


def resolve_target(target: Target, given: MeshwrightTarget | str | None) -> MeshwrightTarget:
    """What a flow builds against: a block, the name of a saved one, or the default for `target`."""
    block = _load(given) if isinstance(given, str) else given or MeshwrightTarget.default(target)
    if block.target is not target:
        raise PermanentError(
            f"the spec's target is {target.value} but the MeshwrightTarget block is for {block.target.value}",
            step="connect",
        )
    return block


def _load(name: str) -> MeshwrightTarget:
    try:
        block: MeshwrightTarget = MeshwrightTarget.load(name)  # type: ignore[assignment]
    except ValueError:
        raise PermanentError(
            f"no saved MeshwrightTarget block named {name!r}; save one with "
            f"MeshwrightTarget(target=...).save({name!r})",
            step="connect",
        ) from None
    return block


@dataclass(frozen=True)
class Cloud:
    """The SDK clients for one target, and how to authenticate to its clusters."""

    target: Target
    container: container_v1.ClusterManagerClient
    firewalls: compute_v1.FirewallsClient
    operations: compute_v1.GlobalOperationsClient
    networks: compute_v1.NetworksClient
    subnetworks: compute_v1.SubnetworksClient
    forwarding_rules: compute_v1.ForwardingRulesClient
    region_operations: compute_v1.RegionOperationsClient
    regions: compute_v1.RegionsClient
    machine_types: compute_v1.MachineTypesClient
    projects: compute_v1.ProjectsClient
    iam: IamClient
    kube_token: TokenSource
    waits: Waits
    api_slots: threading.BoundedSemaphore
    creates: InFlight  # cluster creates in flight, request to RUNNING (tasks/clusters.py)
    kube_clients: kube.Shared  # the clusters' API clients, shared by every step of the process
    default_charts: str
    charts_hint: str  # what to do when charts cannot be fetched from the default source

    @property
    def poll_seconds(self) -> float:
        return self.waits.poll

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

    def kube(self, endpoint: str, ca_certificate: str) -> kubernetes.client.ApiClient:
        """The Kubernetes API client for a cluster's `endpoint` (host:port) trusting its CA (base64 PEM),
        with the user's credentials: one per cluster in the process, its connections reused
        (kube.Shared); closing it does nothing."""
        return self.kube_clients.get(endpoint, ca_certificate)

    def kube_for(self, access: ClusterAccess) -> kubernetes.client.ApiClient:
        """The Kubernetes API client of one RUNNING cluster, with the user's credentials."""
        return self.kube(access.endpoint, access.ca_certificate)

    def kube_as(
        self, endpoint: str, ca_certificate: str, token: str, *, timeout: float
    ) -> kubernetes.client.ApiClient:
        """A client with someone else's credentials (a remote secret's token), to prove them."""
        return kube.connect(endpoint, ca_certificate, lambda: token, timeout=timeout)

    def helm_for(self, access: ClusterAccess, *, step: str) -> AbstractContextManager[helm.HelmCommand]:
        """pyhelm3's Command bound to one RUNNING cluster (helm's failures as meshwright's, for `step`)."""
        return self.helm(access.name, access.endpoint, access.ca_certificate, step=step)

    @contextmanager
    def helm(
        self, cluster: str, endpoint: str, ca_certificate: str, *, step: str
    ) -> Iterator[helm.HelmCommand]:
        """pyhelm3's Command bound to a cluster's `endpoint`, with the user's credentials."""
        token = self.kube_token()
        with (
            helm.cluster_command(
                cluster=cluster, endpoint=endpoint, ca_certificate=ca_certificate, token=token
            ) as command,
            helm_call(cluster=cluster, step=step),
        ):
            yield command


def cloud(target: MeshwrightTarget) -> Cloud:
    """Clients for `target`; cached per process, because Prefect tasks call this a lot."""
    if target.target is Target.SANDBOX:
        return _sandbox(contract.state_dir(target.sandbox_state))
    return _gke(target.credentials_file)


def _clients(
    target: Target,
    credentials: Credentials,
    options: ClientOptions | None,
    token: TokenSource,
    charts: str,
    iam: IamClient,
) -> Cloud:
    kw: Any = {"credentials": credentials, "transport": "rest", "client_options": options}
    return Cloud(
        target=target,
        container=container_v1.ClusterManagerClient(**kw),
        firewalls=compute_v1.FirewallsClient(**kw),
        operations=compute_v1.GlobalOperationsClient(**kw),
        networks=compute_v1.NetworksClient(**kw),
        subnetworks=compute_v1.SubnetworksClient(**kw),
        forwarding_rules=compute_v1.ForwardingRulesClient(**kw),
        region_operations=compute_v1.RegionOperationsClient(**kw),
        regions=compute_v1.RegionsClient(**kw),
        machine_types=compute_v1.MachineTypesClient(**kw),
        projects=compute_v1.ProjectsClient(**kw),
        iam=iam,
        kube_token=token,
        waits=WAITS[target],
        # At most this many GKE/Compute calls at once from one process, so 20 clusters do not
        # become a burst of 20 x polling against the API quota.
        api_slots=threading.BoundedSemaphore(settings().api_concurrency),
        creates=InFlight(settings().max_creates_in_flight),
        kube_clients=kube.Shared(token),
        default_charts=charts,
        charts_hint=CHARTS_HINT[target],
    )


@functools.lru_cache(maxsize=8)
def _sandbox(root: Path) -> Cloud:
    endpoint = contract.endpoint(root)
    token = contract.operator_token(root)
    iam = IamClient(requests.Session(), endpoint)  # the sandbox serves IAM v1 on its one endpoint
    # The bundled charts as a chart repository, so that istio.version picks among its versions.
    charts = contract.charts_url(root)
    return _clients(
        Target.SANDBOX,
        AnonymousCredentials(),
        ClientOptions(api_endpoint=endpoint),
        lambda: token,
        charts,
        iam,
    )


@functools.lru_cache(maxsize=8)
def _gke(credentials_file: str | None) -> Cloud:
    credentials = _google_credentials(credentials_file)
    request = google.auth.transport.requests.Request()

    def token() -> str:
        if not credentials.valid:
            credentials.refresh(request)
        return str(credentials.token)

    iam = IamClient(google.auth.transport.requests.AuthorizedSession(credentials))
    return _clients(Target.GKE, credentials, None, token, ISTIO_CHARTS, iam)


def _google_credentials(credentials_file: str | None) -> Credentials:
    try:
        if credentials_file:
            found: Credentials = service_account.Credentials.from_service_account_file(
                credentials_file, scopes=list(SCOPES)
            )
            return found
        credentials, _ = google.auth.default(scopes=list(SCOPES))
        return credentials
    except (google.auth.exceptions.DefaultCredentialsError, OSError, ValueError) as e:
        raise PermissionDenied(
            "no usable Google credentials: run `gcloud auth application-default login`, or give the "
            f"MeshwrightTarget block a service-account key file ({e.__class__.__name__})",
            step="connect",
        ) from None


def reset_cache() -> None:
    """Forget cached clients (after a sandbox restart moved its endpoint)."""
    _sandbox.cache_clear()
    _gke.cache_clear()
