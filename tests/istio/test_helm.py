"""Which helm runs, what its failures become, and chart sources checked before anything is created."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from pyhelm3 import errors as helm_errors

from meshwright import clients, helm
from meshwright.clients import MeshwrightTarget
from meshwright.errors import InvalidRequest, NotFound, OperationFailed, TransientError
from meshwright.sandbox.contract import BUNDLED_CHARTS, CHARTS_PATH
from meshwright.sandbox.world import World
from meshwright.spec import validate_spec
from meshwright.translate import from_helm
from tasks.istio import preflight_charts
from tests.dataplane.meshes import CENTRAL


@pytest.fixture(autouse=True)
def fresh_version_cache() -> None:
    helm.checked_version.cache_clear()


def fake_helm(directory: Path, version: str) -> str:
    path = directory / "helm"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return str(path)


def test_meshwright_helm_wins_and_an_old_helm_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(helm.HELM_ENV, fake_helm(tmp_path, "v3.12.0"))
    assert helm.executable() == str(tmp_path / "helm")
    with pytest.raises(helm.HelmMissing, match=r"Helm v3.12.0; meshwright needs >= 3.14.0"):
        helm.offline_client()


def test_a_missing_helm_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(helm.HELM_ENV, "/nonexistent/helm")
    with pytest.raises(helm.HelmMissing, match="make helm"):
        helm.checked_version(helm.executable())


def test_the_bundled_helm_is_found_beside_the_venv_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(helm.HELM_ENV, raising=False)
    bundled = Path(sys.executable).parent / "helm"
    if not bundled.exists():
        pytest.fail(f"{bundled} missing: run `make helm`")
    assert helm.executable() == str(bundled)
    assert helm.checked_version(helm.executable()) == "v3.17.2"


def error(kind: type[helm_errors.Error], stderr: str) -> helm_errors.Error:
    return kind(1, b"", stderr.encode())


@pytest.mark.parametrize(
    ("raised", "expected", "message"),
    [
        (
            error(
                helm_errors.Error,
                'Error: Kubernetes cluster unreachable: Get "https://x": dial tcp: connection refused',
            ),
            TransientError,
            "Kubernetes cluster unreachable",
        ),
        (
            error(
                helm_errors.Error,
                "Error: values don't meet the specifications of the schema(s) in the following chart(s):\ngateway:\n- (root): Additional property bogus is not allowed",
            ),
            InvalidRequest,
            "Additional property bogus is not allowed",
        ),
        (
            error(helm_errors.ChartNotFoundError, 'Error: chart "nope" not found in repo'),
            NotFound,
            "not found",
        ),
        (
            error(helm_errors.Error, "Error: UPGRADE FAILED: timed out waiting for the condition"),
            OperationFailed,
            "not ready in time",
        ),
    ],
)
def test_helm_failures_become_one_line_errors_naming_cluster_and_step(
    raised: helm_errors.Error, expected: type[Exception], message: str
) -> None:
    translated = from_helm(raised, cluster="west", step="install_istiod")
    assert type(translated) is expected
    assert message in str(translated)
    assert str(translated).startswith("install_istiod [west]: ")
    assert "\n" not in str(translated)


def test_the_bundled_charts_resolve_at_the_istio_version() -> None:
    refs = helm.resolve_charts(str(BUNDLED_CHARTS), "1.30.3", hint="hint")
    assert [(r.chart, r.version, r.repo) for r in refs] == [
        ("base", "1.30.3", None),
        ("istiod", "1.30.3", None),
        ("gateway", "1.30.3", None),
    ]


def test_an_unreachable_repository_fails_preflight_with_a_hint() -> None:
    with pytest.raises(
        NotFound, match=r"charts cannot be fetched from http://127.0.0.1:9/charts: .*\(use the bundled\)$"
    ):
        helm.resolve_charts("http://127.0.0.1:9/charts", "1.30.3", hint="use the bundled")


def test_a_directory_without_the_three_charts_fails_preflight(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "Chart.yaml").write_text("apiVersion: v2\nname: base\nversion: 1.0.0\n")
    with pytest.raises(NotFound, match="has no istiod, gateway chart"):
        helm.resolve_charts(str(tmp_path), "1.30.3", hint="h")


def test_chart_sources_map_to_helm_arguments() -> None:
    repo = "https://istio-release.storage.googleapis.com/charts"
    assert helm.locate(repo, "istiod", "1.30.3") == ("istiod", repo, "1.30.3")
    assert helm.locate("oci://registry.istio.io/release/charts/", "base", "1.30.3") == (
        "oci://registry.istio.io/release/charts/base",
        None,
        "1.30.3",
    )
    assert helm.locate("/charts", "gateway", "1.30.3") == ("/charts/gateway", None, None)


def test_the_cluster_kubeconfig_is_private_and_gone_afterwards() -> None:
    with helm.cluster_command(
        cluster="west", endpoint="127.0.0.1:1", ca_certificate="Y2E=", token="secret-token"
    ) as command:
        path = Path(command._kubeconfig)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert "secret-token" in path.read_text()
    assert not path.exists()


def test_a_version_the_repository_lacks_fails_preflight_naming_the_versions_it_has(sandbox: World) -> None:
    url = f"{sandbox.base_url()}{CHARTS_PATH}"
    assert helm.repository_versions(url) == ["1.30.3", "1.29.8"]
    with pytest.raises(NotFound) as refused:
        helm.resolve_charts(url, "1.28.0", hint="h")
    assert str(refused.value) == (
        f"preflight: chart repository {url} has base, istiod and gateway at 1.30.3, 1.29.8, not at 1.28.0: "
        "set istio.version to one of those"
    )


def test_an_unreadable_index_leaves_helms_own_message() -> None:
    assert helm.repository_versions("http://127.0.0.1:9/charts", timeout=1) is None


def test_istio_version_picks_the_bundled_charts_version_on_the_sandbox(target: MeshwrightTarget) -> None:
    spec = validate_spec(
        {"name": "m1", "project": "demo-project", "clusters": [CENTRAL], "istio": {"version": "1.29.8"}}
    )
    refs = preflight_charts.fn(spec, target=target)
    assert {(r.chart, r.version) for r in refs} == {
        ("base", "1.29.8"),
        ("istiod", "1.29.8"),
        ("gateway", "1.29.8"),
    }
    assert {r.repo for r in refs} == {clients.cloud(target).default_charts}
