"""`meshwright verify/test --drill`: the drills reach the flow as its `drills` parameter, an unknown
one stops the command before any run (exit 2), and the report prints a line per drill."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from meshwright.cli import commands, render
from meshwright.drills import DrillResult
from meshwright.verify import VerifyReport
from tests.cli.test_verify_report import SPEC


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    asked: list[tuple[str, dict[str, Any]]] = []

    def run(flow: str, model: type, *args: Any, kept: Any = None, **params: Any) -> None:
        asked.append((flow, params))

    monkeypatch.setattr(commands, "_run", run)
    monkeypatch.setattr(commands, "_connection", lambda *args: None)
    monkeypatch.setattr(commands, "_check_kubeconfig", lambda *args, **kw: tmp_path / "kubeconfig")
    (tmp_path / "mesh.yaml").write_text(yaml.safe_dump(SPEC))
    return asked


def test_verify_and_test_pass_each_drill_to_their_flow(
    runs: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    spec = str(tmp_path / "mesh.yaml")
    CliRunner().invoke(commands.app, ["verify", spec, "--drill", "failover", "--drill", "rotate-secrets"])
    CliRunner().invoke(commands.app, ["test", spec, "--drill", "rotate-secrets"])
    CliRunner().invoke(commands.app, ["verify", spec])

    assert [(flow, params.get("drills")) for flow, params in runs] == [
        ("verify-mesh", ["failover", "rotate-secrets"]),
        ("mesh-smoke-test", ["rotate-secrets"]),
        ("verify-mesh", None),
    ]


def test_an_unknown_drill_exits_2_before_any_run(
    runs: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    result = CliRunner().invoke(commands.app, ["verify", str(tmp_path / "mesh.yaml"), "--drill", "chaos"])
    assert result.exit_code == 2
    said = " ".join(re.sub("[│╭╮╰╯─]", " ", result.stderr).split())  # typer's error box, unwrapped
    assert "unknown drill(s) chaos: choose from failover, rotate-secrets" in said
    assert runs == []


def test_the_text_report_has_a_line_per_drill_and_its_problems() -> None:
    held = DrillResult(
        drill="failover",
        subject="reviews-v3 on west",
        requests=40,
        served={"central": {"v1": 20}},
        back_seconds=0.4,
    )
    lost = DrillResult(
        drill="rotate-secrets",
        subject="the reader tokens of east",
        requests=10,
        failed=2,
        problems=["east: boom"],
    )
    report = VerifyReport(mesh="m", tables=[], roots={}, problems=[], drills=[held, lost])
    assert render.drills(report) == [
        "drill failover (reviews-v3 on west): ok; 40/40 requests ok (served: central 20), back after 0.4s",
        "drill rotate-secrets (the reader tokens of east): FAILED; 8/10 requests ok (served: -)",
        "  east: boom",
    ]
