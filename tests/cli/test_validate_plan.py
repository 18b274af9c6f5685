"""The CLI's validate and plan: exit codes and what a user reads."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from meshwright.cli import app

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
    assert "clusters[1].primary: 'centrl' is not a cluster of this mesh" in result.output


def test_plan_json_is_machine_readable() -> None:
    result = runner.invoke(app, ["plan", "--json", str(ROOT / "deployments" / "sandbox.yaml")])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["stages"][0]["parallel"] is True
    assert len(data["stages"][0]["steps"]) == 3
