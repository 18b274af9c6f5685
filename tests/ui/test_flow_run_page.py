"""The Prefect UI in a real headless browser shows a smoke test started from its deployment: the
run, its subflows and task runs, and its report artifact. Screenshots land in the test's output
directory (and in docs/ with MESHWRIGHT_UPDATE_DOCS=1, for the README's walk-through)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx

from tests.ui.browser import Browser
from tests.ui.conftest import Stack

DOCS = Path(__file__).resolve().parents[2] / "docs"


def subflow_id(api: str, parent: str, flow_name: str) -> str:
    flows = httpx.post(f"{api}/flows/filter", json={"flows": {"name": {"any_": [flow_name]}}}).json()
    body = {
        "flow_runs": {"parent_flow_run_id": {"any_": [parent]}},
        "flows": {"id": {"any_": [flows[0]["id"]]}},
    }
    return str(httpx.post(f"{api}/flow_runs/filter", json=body).json()[0]["id"])


def latest_artifact(api: str, key: str) -> str:
    body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1}
    return str(httpx.post(f"{api}/artifacts/filter", json=body).json()[0]["id"])


def keep(shots: list[Path]) -> None:
    if os.environ.get("MESHWRIGHT_UPDATE_DOCS"):
        DOCS.mkdir(exist_ok=True)
        for shot in shots:
            shutil.copy(shot, DOCS / shot.name)


def test_smoke_test_run_its_task_runs_and_report_are_shown(stack: Stack, tmp_path: Path) -> None:
    done = stack.cli("test", str(stack.spec))
    assert done.returncode == 0, done.stderr[-3000:]
    run_url = next(line.split(": ", 1)[1] for line in done.stderr.splitlines() if "/runs/flow-run/" in line)
    run_id, ui = run_url.rsplit("/", 1)[1], stack.api.ui
    run = httpx.get(f"{stack.api.url}/flow_runs/{run_id}").json()
    deployment = run["deployment_id"]
    shots = []
    with Browser(tmp_path / "profile") as browser:
        browser.open(f"{ui}/dashboard", "Dashboard", "failed or crashed runs")
        shots.append(browser.screenshot(tmp_path / "ui-server.png"))
        browser.open(f"{ui}/deployments/deployment/{deployment}", "mesh-smoke-test", "meshwright")
        shots.append(browser.screenshot(tmp_path / "ui-deployment.png"))
        browser.open(f"{ui}/deployments/deployment/{deployment}/run", "spec", "connection")
        shots.append(browser.screenshot(tmp_path / "ui-run-form.png"))

        browser.open(run_url, run["name"], "Completed", "mesh-smoke-test", "Retry")
        browser.click("Subflow Runs")
        browser.wait_for("up-mesh", "teardown-mesh")
        shots.append(browser.screenshot(tmp_path / "ui-flow-run-graph.png"))
        browser.click("Artifacts")
        browser.wait_for("mesh-uimesh-smoke-test", "Smoke test of mesh uimesh: passed")

        up = subflow_id(stack.api.url, run_id, "up-mesh")
        browser.open(f"{ui}/runs/flow-run/{up}", "up-mesh", "Completed")
        browser.click("Task Runs")
        browser.wait_for("create_cluster[ui-central]", "install_istiod[ui-central]", "write_kubeconfig")
        shots.append(browser.screenshot(tmp_path / "ui-task-runs.png"))

        artifact = latest_artifact(stack.api.url, "mesh-uimesh-smoke-test")
        browser.open(f"{ui}/artifacts/artifact/{artifact}", "Smoke test of mesh", "Stages", "Teardown")
        shots.append(browser.screenshot(tmp_path / "ui-report-artifact.png"))

        browser.open(run_url, run["name"], "Retry")
        browser.click("Retry")
        browser.wait_for(f"Retry {run['name']}?", "without a persisted result")
        shots.append(browser.screenshot(tmp_path / "ui-retry.png"))
    assert all(s.stat().st_size > 10_000 for s in shots)
    keep(shots)
