"""`meshwright verify` prints its report, each link a row, on failure too: the report a failed run
kept is read from its task run (Prefect's REST API stood in for by httpx's MockTransport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from meshwright.cli import commands, render, runs
from meshwright.traffic import TrafficReport
from meshwright.verify import Latency, Link, VerifyReport

SPEC = {
    "name": "four",
    "project": "demo-project",
    "clusters": [
        {"name": "central", "location": "us-central1-a"},
        {"name": "west", "location": "us-west1-b", "primary": "central"},
    ],
}


def report(*, ok: bool) -> VerifyReport:
    broken = (
        {}
        if ok
        else {
            "layer": "firewall",
            "reason": "no firewall rule lets 10.8.0.0/14 reach west's nodes on tcp:9080",
        }
    )
    latency = Latency(p50=4.2, p95=9.5) if ok else Latency()
    west = Link(
        primary="central",
        cluster="west",
        ok=ok,
        synced="synced",
        same_root=True,
        served=20 if ok else 0,
        latency_ms=latency,
        **broken,
    )
    said = [] if ok else ["reviews-v1 on west never answered: 2/2 requests got 503"]
    traffic = TrafficReport(
        mesh="four", address="127.0.0.2", requests=2, served={}, failures=[], findings=[], problems=said
    )
    return VerifyReport(mesh="four", tables=[], roots={}, problems=[], traffic=traffic, links=[west])  # fmt: skip


def test_the_report_a_failed_run_kept_is_read_from_its_task_run(tmp_path: Path) -> None:
    stored = tmp_path / "verify-report-1"
    stored.write_text(json.dumps({"metadata": {}, "result": report(ok=False).model_dump_json()}))
    asked: list[Any] = []

    def api(request: httpx.Request) -> httpx.Response:
        asked.append(json.loads(request.content))
        data = {"storage_key": str(stored), "serializer": {"type": "json"}}
        return httpx.Response(
            200, json=[{"name": "keep_report", "state": {"type": "COMPLETED", "data": data}}]
        )

    with httpx.Client(base_url="http://prefect/api", transport=httpx.MockTransport(api)) as client:
        kept = VerifyReport.model_validate(runs.kept_result(client, "run-1", "keep_report"))
    assert kept == report(ok=False)
    assert asked[0]["flow_runs"] == {"id": {"any_": ["run-1"]}}
    assert asked[0]["task_runs"]["name"] == {"any_": ["keep_report"]}

    nothing = httpx.MockTransport(lambda request: httpx.Response(200, json=[]))
    with httpx.Client(base_url="http://prefect/api", transport=nothing) as client:
        assert runs.kept_result(client, "run-2", "keep_report", wait=0.0) is None


def test_each_link_is_a_row_and_a_broken_one_says_what_broke() -> None:
    both = report(ok=True).model_copy(update={"links": report(ok=True).links + report(ok=False).links})
    assert render.links(both) == [
        "links:",
        "  link             verdict  synced  root  served  p50 ms  p95 ms  what broke",
        "  central -> west  ok       synced  same  20      4.2     9.5",
        "  central -> west  BROKEN   synced  same  0       -       -       "
        "firewall: no firewall rule lets 10.8.0.0/14 reach west's nodes on tcp:9080",
    ]


def test_verify_json_prints_the_kept_report_on_failure_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failed_run(flow: str, model: type, *args: Any, kept: Any = None, **params: Any) -> None:
        kept(report(ok=False))  # what _run does with a failed run's kept report
        commands.fail("verify: traffic through the ingress of mesh four has 1 problem(s)")

    monkeypatch.setattr(commands, "_run", failed_run)
    monkeypatch.setattr(commands, "_connection", lambda *args: None)
    spec = tmp_path / "mesh.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    result = CliRunner().invoke(commands.app, ["verify", "--json", str(spec)])
    assert result.exit_code == 1
    printed = json.loads(result.stdout)
    assert printed["ok"] is False
    assert [(k["primary"], k["cluster"], k["ok"], k["latency_ms"]) for k in printed["links"]] == [
        ("central", "west", False, {"p50": None, "p95": None})
    ]
    assert "firewall" in printed["links"][0]["reason"]
    assert result.stderr.startswith("error: verify: traffic through the ingress")
