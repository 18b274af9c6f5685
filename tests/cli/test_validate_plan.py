"""The CLI's validate and plan: exit codes and what a user reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meshwright.cli import app
from meshwright.settings import settings

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_validate_good_spec_prints_summary() -> None:
    result = runner.invoke(app, ["validate", str(ROOT / "deployments" / "sandbox.yaml")])
    assert result.exit_code == 0
    assert "3 cluster(s)" in result.output
    assert "primary-remote" in result.output


def test_validate_bad_spec_exits_2_listing_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "deployments" / "sandbox.yaml")
        .read_text()
        .replace("primary: central\n", "primary: centrl\n", 1)
        + "colour: blue\n"
    )
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "colour: unknown field" in result.output
    assert "clusters[1].primary: names no cluster of this mesh" in result.output


def test_plan_json_is_machine_readable() -> None:
    result = runner.invoke(app, ["plan", "--json", str(ROOT / "deployments" / "sandbox.yaml")])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["stages"][0]["parallel"] is True
    assert len(data["stages"][0]["steps"]) == 3


def test_validate_binary_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    binary = tmp_path / "image.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    result = runner.invoke(app, ["validate", str(binary)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: {binary} is invalid:",
        "  not UTF-8 text (byte 0x80 at offset 128); a spec is a YAML file",
    ]


def test_validate_dev_zero_is_refused_unread() -> None:
    result = runner.invoke(app, ["validate", "/dev/zero"])
    assert result.exit_code == 2
    assert "the spec is not a regular file (a character device)" in result.output
    assert "Traceback" not in result.output


def test_up_refuses_a_kubeconfig_of_another_mesh_before_building_anything(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncontexts: [{name: prod, context: {cluster: prod, user: me}}]\n"
        "preferences: {extensions: [{name: meshwright, extension: {mesh: other, project: demo-project, target: sandbox}}]}\n"
    )
    before = kubeconfig.read_text()
    state = tmp_path / "sandbox"
    spec = str(ROOT / "deployments" / "multi-primary.yaml")
    result = runner.invoke(app, ["up", spec, "--kubeconfig", str(kubeconfig), "--state", str(state)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"error: {kubeconfig} holds the kubeconfig of mesh 'other' (demo-project on sandbox); "
        "choose another --kubeconfig path, or pass --force to overwrite it"
    ]
    assert kubeconfig.read_text() == before
    assert not state.exists()


def test_validate_a_value_of_the_wrong_type_is_one_message_and_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "mesh.yaml"
    spec.write_text(
        "name: m\nproject: demo-project\nclusters:\n  - {name: a, location: us-west1-b}\n"
        "  - {name: b, location: us-west1-b, primary: [a]}\n"
        "bookinfo:\n  placement:\n    a: [[productpage-v1]]\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: {spec} is invalid:",
        "  clusters[1].primary: Input should be a valid string",
        "  bookinfo.placement.a[0]: Input should be a valid string",
    ]


def test_validate_reads_the_file_its_user_names_outside_the_spec_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The allowed roots guard paths that reach a flow as a parameter, not the CLI user's own files."""
    spec = tmp_path / "mesh.yaml"
    spec.write_text((ROOT / "deployments" / "multi-primary.yaml").read_text())
    monkeypatch.setenv("MESHWRIGHT_SPEC_ROOTS", "")
    settings.cache_clear()
    try:
        assert settings().spec_roots == ()
        result = runner.invoke(app, ["validate", str(spec)])
    finally:
        settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: mesh 'dual-mesh'")


def test_an_upgrade_rehearsal_of_its_own_version_is_refused_before_any_run(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["test", str(ROOT / "deployments" / "sandbox.yaml"), "--upgrade-from", "1.30.3"]
    )
    assert result.exit_code == 2
    assert "upgrade_from is the spec's own istio.version (1.30.3): nothing to upgrade" in result.output
    assert "flow run" not in result.output
