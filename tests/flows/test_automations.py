"""The automations that act when a run's process cannot: a smoke test whose process died (it sent a
heartbeat, then nothing) is marked Crashed, and its mesh's teardown is started with its own
parameters. Driven through the harness's real event pipeline (triggers, actions) with the
heartbeat a dead run's engine last sent."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter
from prefect.settings import PREFECT_API_URL
from prefect.states import Completed, Failed, Running

from meshwright import automations
from meshwright.cli import server

pytestmark = pytest.mark.usefixtures("harness")

PARAMETERS = {
    "spec": {
        "name": "zombie",
        "project": "demo-project",
        "clusters": [{"name": "a", "location": "us-east1-b"}],
    },
    "connection": None,
    "kubeconfig": "/home/someone/.meshwright/zombie/kubeconfig",
}


def _deployment(client: SyncPrefectClient, flow: str) -> UUID:
    return client.create_deployment(
        flow_id=client.create_flow_from_name(flow), name=f"drill-{uuid4().hex[:6]}"
    )


def _heartbeat(run: Any) -> None:
    """The event the flow engine sends every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (flow_engine.py)."""
    event = {
        "id": str(uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": "prefect.flow-run.heartbeat",
        "resource": {"prefect.resource.id": f"prefect.flow-run.{run.id}", "prefect.resource.name": run.name},
        "related": [
            {
                "prefect.resource.id": f"prefect.flow.{run.flow_id}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": automations.SMOKE_FLOW,
            }
        ],
    }
    httpx.post(f"{PREFECT_API_URL.value()}/events", json=[event]).raise_for_status()


def _until(what: str, probe: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f}s"
        time.sleep(0.5)
    return found


def test_a_smoke_test_that_goes_silent_is_crashed_and_its_mesh_torn_down_with_its_parameters() -> None:
    with get_client(sync_client=True) as client:
        teardown = _deployment(client, "teardown-mesh")
        smoke = _deployment(client, automations.SMOKE_FLOW)
        wanted = [
            automations.crash_silent_runs(silence=timedelta(seconds=10)),
            automations.tear_down_ended_smoke_tests(teardown),
        ]
        ids = automations.ensure(client, wanted)
        assert automations.ensure(client, wanted) == ids  # ensured again: the same two, not four
        run = client.create_flow_run_from_deployment(smoke, parameters=PARAMETERS)
        client.set_flow_run_state(run.id, Running(), force=True)
        _heartbeat(run)
        # A run that ended, whose end the trigger did not see (its event lost while a server restarted).
        ended = client.create_flow_run_from_deployment(smoke, parameters=PARAMETERS)
        client.set_flow_run_state(ended.id, Running(), force=True)
        client.set_flow_run_state(ended.id, Completed(), force=True)
        _heartbeat(ended)

        state = _until("Crashed", lambda: (s := client.read_flow_run(run.id).state) and s.is_crashed() and s)
        assert "no heartbeat for 10s" in (state.message or "")
        runs = FlowRunFilter()
        only_teardown = DeploymentFilter(id=DeploymentFilterId(any_=[teardown]))
        started = _until(
            "teardown run",
            lambda: client.read_flow_runs(flow_run_filter=runs, deployment_filter=only_teardown),
        )
        assert [r.parameters for r in started] == [{**PARAMETERS, "wait": True}]
        time.sleep(1)
        assert client.read_flow_run(ended.id).state.is_completed()  # never turned into Crashed
        for automation in ids:  # the harness is shared: leave no automation behind
            client.delete_automation(automation)


def test_the_runner_sends_heartbeats_often_enough_for_the_silence_the_automation_allows() -> None:
    env = server._prefect_env(server.home(), "http://127.0.0.1:1/api")
    assert env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == str(automations.HEARTBEAT_SECONDS)
    assert automations.SILENCE.total_seconds() >= 3 * automations.HEARTBEAT_SECONDS


def test_a_failed_smoke_test_is_told_through_the_notification_block_named() -> None:
    told: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            told.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    block = CustomWebhookNotificationBlock(
        name="mesh-alerts",
        url=f"http://127.0.0.1:{hook.server_address[1]}/hook",
        json_data={"text": "{{subject}}\n{{body}}"},
        headers=None,
        cookies=None,
    )
    block.save("mesh-alerts", overwrite=True)
    try:
        with get_client(sync_client=True) as client:
            named = automations.notification_block(client, "custom-webhook/mesh-alerts")
            ids = automations.ensure(client, [automations.notify_failed_smoke_tests(named)])
            run = client.create_flow_run_from_deployment(
                _deployment(client, automations.SMOKE_FLOW), parameters=PARAMETERS
            )
            client.set_flow_run_state(run.id, Running(), force=True)
            client.set_flow_run_state(run.id, Failed(message="verify: 3 link(s) broken"), force=True)
            _until("the notification", lambda: told)
            for automation in ids:
                client.delete_automation(automation)
    finally:
        hook.shutdown()
    text = told[0]["text"]
    assert f"smoke test {run.name} ended Failed" in text
    assert "verify: 3 link(s) broken" in text
    assert f"flow run {run.id}" in text
