"""Releases read from helm's storage Secrets (what the real helm wrote) answer as `helm get` does, so
that a rerun decides "unchanged" without a helm process, and asks helm whenever a Secret is missing."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import kubernetes.client
import pytest

from meshwright import clients, helm, helm_storage
from meshwright.clients import MeshwrightTarget
from meshwright.models import ChartRef, ClusterAccess
from meshwright.observe import observe
from meshwright.spec import MeshSpec
from tasks.istio import install_release, installed_revisions, prepare_namespace, stored_releases
from tests.istio.support import bring_up, helm_releases, primary_remote

NS = "istio-system"


def _west(
    target: MeshwrightTarget, bundled: list[ChartRef], releases: tuple[str, ...] = ("istio-base", "istiod")
) -> tuple[MeshSpec, ClusterAccess]:
    """A remote with `releases` installed by the real helm."""
    spec = primary_remote()
    west = bring_up(spec, target)["west"]
    prepare_namespace.fn(spec, west, target=target)
    for release in releases:
        install_release.fn(spec, west, release, bundled, target=target, remote_pilot_address="10.0.0.7")
    return spec, west


def _helm_get(target: MeshwrightTarget, access: ClusterAccess, name: str) -> dict[str, Any]:
    with clients.cloud(target).helm_for(access, step="test") as command:
        meta = asyncio.run(helm._metadata(command, name, NS))
        assert meta is not None
        values = asyncio.run(command.get_values(name, namespace=NS))
        rendered = asyncio.run(helm.manifest(command, name, NS))
    return {"metadata": meta, "values": dict(values), "manifest": rendered}


IN_SANDBOX = pytest.mark.usefixtures("sandbox", "meshwright_home")


@pytest.fixture
def helm_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The helm subcommands run (`get`, `upgrade`, `list`, ...), in order."""
    ran: list[str] = []
    real = helm.HelmCommand.run

    async def counted(self: helm.HelmCommand, command: list[str], input: bytes | None = None) -> bytes:
        ran.append(" ".join(str(part) for part in command[:2]))
        return await real(self, command, input)

    monkeypatch.setattr(helm.HelmCommand, "run", counted)
    return ran


@IN_SANDBOX
def test_a_release_the_real_helm_stored_reads_as_helm_get_reports_it(
    target: MeshwrightTarget, bundled: list[ChartRef]
) -> None:
    _, west = _west(target, bundled)
    stored = stored_releases(target, west, step="test")
    assert stored is not None
    for name in ("istio-base", "istiod-1-30-3"):
        release, asked = stored.latest(name), _helm_get(target, west, name)
        assert release is not None
        mine = release.metadata()
        for key in ("name", "chart", "version", "appVersion", "revision", "status", "deployedAt"):
            assert mine[key] == asked["metadata"][key], key
        assert release.config == asked["values"]
        assert helm.parse_manifest(release.manifest) == asked["manifest"]
    listed = {r.name: (str(r.revision), r.app_version, r.status) for r in stored.listed() or []}
    shown = {r["name"]: (r["revision"], r["app_version"], r["status"]) for r in helm_releases(target, west)}
    assert listed == shown


@IN_SANDBOX
def test_an_unchanged_rerun_runs_no_helm_and_a_changed_value_still_upgrades(
    target: MeshwrightTarget,
    bundled: list[ChartRef],
    helm_runs: list[str],
) -> None:
    spec, west = _west(target, bundled, ("istiod",))
    helm_runs.clear()
    again = install_release.fn(spec, west, "istiod", bundled, target=target, remote_pilot_address="10.0.0.7")
    assert (again.action, again.revision, helm_runs) == ("unchanged", 1, [])
    moved = install_release.fn(spec, west, "istiod", bundled, target=target, remote_pilot_address="10.9.9.9")
    assert (moved.action, moved.revision, helm_runs) == ("upgraded", 2, ["upgrade istiod-1-30-3"])
    assert installed_revisions(target, west, step="test") == {"1-30-3": "1.30.3"}


@IN_SANDBOX
def test_a_first_install_starts_one_helm_process(
    target: MeshwrightTarget,
    bundled: list[ChartRef],
    helm_runs: list[str],
) -> None:
    spec, west = _west(target, bundled, ())
    helm_runs.clear()
    first = install_release.fn(spec, west, "istio-base", bundled, target=target)
    # helm's storage holds no revision of it: no `helm get metadata` to hear "not found"
    assert (first.action, first.revision, helm_runs) == ("installed", 1, ["upgrade istio-base"])


@IN_SANDBOX
def test_a_release_whose_storage_secret_cannot_be_read_is_asked_of_helm(
    target: MeshwrightTarget,
    bundled: list[ChartRef],
    helm_runs: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, west = _west(target, bundled, ("istio-base",))
    monkeypatch.setattr(helm_storage, "_decoded", lambda revision: None)
    helm_runs.clear()
    again = install_release.fn(spec, west, "istio-base", bundled, target=target)
    assert (again.action, again.revision) == ("unchanged", 1)
    assert helm_runs == ["list --max", "get metadata", "get values", "get manifest"]


def _secret(name: str, version: str, status: str, release: bytes) -> kubernetes.client.V1Secret:
    labels = {"owner": "helm", "name": name, "version": version, "status": status}
    data = {"release": base64.b64encode(base64.b64encode(release)).decode()}
    return kubernetes.client.V1Secret(metadata=kubernetes.client.V1ObjectMeta(labels=labels), data=data)


def test_uncompressed_and_undecodable_releases_are_read_or_left_to_helm() -> None:
    doc = {
        "name": "istiod",
        "version": 2,
        "info": {"status": "failed", "last_deployed": "2026-01-01T00:00:00Z"},
        "chart": {"metadata": {"name": "istiod", "version": "1.30.3", "appVersion": "1.30.3"}},
        "config": {"global": {"meshID": "m1"}},
        "manifest": "",
    }
    older = _secret("istiod", "1", "superseded", b"not json")
    stored = helm_storage.Stored([older, _secret("istiod", "2", "failed", json.dumps(doc).encode())])
    latest = stored.latest("istiod")
    assert latest is not None
    assert (latest.revision, latest.status, latest.config) == (2, "failed", doc["config"])
    assert [r.name for r in stored.listed() or []] == ["istiod"]
    assert (
        helm_storage.Stored([_secret("istiod", "3", "deployed", b"\x1f\x8b\x08junk")]).latest("istiod")
        is None
    )
    assert helm_storage.Stored([]).latest("istiod") is None


@IN_SANDBOX
def test_observing_a_mesh_reads_its_releases_without_a_helm_process(
    target: MeshwrightTarget,
    bundled: list[ChartRef],
    helm_runs: list[str],
) -> None:
    spec, west = _west(target, bundled)
    helm_runs.clear()
    seen = observe(spec, target).cluster("west")
    assert seen is not None
    assert helm_runs == []
    assert seen.releases == {r["name"]: r["app_version"] for r in helm_releases(target, west)}
