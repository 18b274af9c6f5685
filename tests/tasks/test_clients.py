"""The client factory: one MeshwrightTarget block in, the clients and cluster access for that target out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from pydantic import ValidationError

from meshwright import clients
from meshwright.clients import MeshwrightTarget, resolve_target
from meshwright.errors import PermanentError, PermissionDenied
from meshwright.sandbox.contract import CHARTS_PATH, SandboxNotRunning
from meshwright.sandbox.world import World
from meshwright.settings import Settings
from meshwright.spec import Target
from tests.support import gke_client, running_cluster


def test_sandbox_target_builds_clients_for_its_own_state_directory(
    sandbox: World, target: MeshwrightTarget
) -> None:
    cloud = clients.cloud(target)
    assert cloud.target is Target.SANDBOX
    assert cloud.default_charts == f"{sandbox.base_url()}{CHARTS_PATH}"  # the bundled charts' repository
    assert cloud.kubeconfig_user() == {"token": (sandbox.layout.root / "operator-token").read_text().strip()}
    assert (
        clients.cloud(MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(sandbox.layout.root)))
        is cloud
    )


def test_kube_client_reaches_a_sandbox_cluster_trusting_only_its_ca(
    sandbox: World, target: MeshwrightTarget
) -> None:
    cluster = running_cluster(gke_client(sandbox), "central")
    api = clients.cloud(target).kube(cluster.endpoint, cluster.master_auth.cluster_ca_certificate)
    names = [ns.metadata.name for ns in kubernetes.client.CoreV1Api(api).list_namespace().items]
    assert "kube-system" in names
    assert api.configuration.host == f"https://{cluster.endpoint}"


def test_a_sandbox_that_never_ran_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxNotRunning, match=r"no sandbox has run with state .*; start one with"):
        clients.cloud(MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(tmp_path / "none")))


def test_gke_with_an_unreadable_key_file_is_permission_denied(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account"}))
    with pytest.raises(PermissionDenied, match="no usable Google credentials"):
        clients.cloud(MeshwrightTarget(target=Target.GKE, credentials_file=str(key)))


def _key_file(path: Path) -> Path:
    """A service-account key file with a real RSA key: Google's libraries read it without a network."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "meshwright@demo-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.write_text(json.dumps(info))
    return path


def test_google_credentials_ask_for_cloud_platform_and_the_email_as_the_gke_auth_plugin_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubernetes/cloud-provider-gcp cmd/gke-gcloud-auth-plugin/cred: without userinfo.email GKE sees
    a numeric uniqueID, and RBAC or IAM grants written for the email do not match."""
    wanted = [
        "https://www.googleapis.com/auth/cloud-platform",
        "https://www.googleapis.com/auth/userinfo.email",
    ]
    key = _key_file(tmp_path / "key.json")
    from_file: Any = clients._google_credentials(str(key))
    assert list(from_file.scopes) == wanted
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))  # application default credentials
    from_default: Any = clients._google_credentials(None)
    assert list(from_default.scopes) == wanted


def test_gke_target_defaults_to_istio_charts_and_the_auth_plugin() -> None:
    assert clients.ISTIO_CHARTS == "https://istio-release.storage.googleapis.com/charts"
    assert clients.GKE_AUTH_PLUGIN["command"] == "gke-gcloud-auth-plugin"


def test_a_block_for_another_target_than_the_spec_is_refused(target: MeshwrightTarget) -> None:
    with pytest.raises(
        PermanentError, match="the spec's target is gke but the MeshwrightTarget block is for sandbox"
    ):
        resolve_target(Target.GKE, target)
    assert resolve_target(Target.SANDBOX, target) is target


def test_default_block_records_the_sandbox_state_it_chose(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MESHWRIGHT_SANDBOX_STATE", str(tmp_path / "sb"))
    assert MeshwrightTarget.default(Target.SANDBOX).sandbox_state == str(tmp_path / "sb")
    assert MeshwrightTarget.default(Target.GKE).sandbox_state is None


def test_the_retry_budget_is_minutes_of_capped_exponential_waits() -> None:
    from tasks.common import retry_delays

    assert Settings.model_fields["retries"].default == 8
    assert (
        Settings.model_fields["retry_backoff"].default,
        Settings.model_fields["retry_max_delay"].default,
    ) == (2.0, 60.0)
    assert retry_delays(8) == [min(0.05 * 2**i, 0.2) for i in range(8)]  # this suite's settings


def test_settings_come_from_meshwright_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHWRIGHT_MAX_WORKERS", "3")
    monkeypatch.setenv("MESHWRIGHT_API_CONCURRENCY", "2")
    monkeypatch.setenv("MESHWRIGHT_RETRY_BACKOFF", "0.5")
    monkeypatch.setenv("MESHWRIGHT_HOME", "/srv/meshwright")
    monkeypatch.setenv("MESHWRIGHT_RETRIES", "3")
    monkeypatch.setenv("MESHWRIGHT_RETRY_MAX_DELAY", "30")
    monkeypatch.setenv("MESHWRIGHT_SPEC_ROOTS", "/srv/specs:/etc/meshwright/specs")
    monkeypatch.setenv("MESHWRIGHT_NOTIFY_BLOCK", "slack-webhook/mesh-alerts")
    monkeypatch.setenv("MESHWRIGHT_MAX_CREATES_IN_FLIGHT", "5")
    assert Settings().model_dump() == {
        "max_workers": 3,
        "api_concurrency": 2,
        "max_creates_in_flight": 5,
        "retries": 3,
        "retry_backoff": 0.5,
        "retry_max_delay": 30.0,
        "home": Path("/srv/meshwright"),
        "notify_block": "slack-webhook/mesh-alerts",
        "spec_roots": (Path("/srv/specs"), Path("/etc/meshwright/specs")),
    }
    monkeypatch.setenv("MESHWRIGHT_MAX_WORKERS", "0")
    with pytest.raises(ValidationError, match="max_workers"):
        Settings()
