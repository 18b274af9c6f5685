"""The Prefect automations meshwright relies on when a run's own process can no longer act.

A run whose process is killed (the runner's process group, a worker's pod, the machine) stays
`Running` for good: nothing is left to report its end. Prefect's answer is heartbeats plus an
automation (docs.prefect.io, "How to detect and respond to zombie flows"): the flow engine emits
`prefect.flow-run.heartbeat` every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds
(prefect/flow_engine.py `_send_heartbeats`), and a proactive trigger that misses them marks the run
`Crashed`. Its mesh slot frees itself (the lease runs out, flows/_slots.py).

A smoke test that ended `Crashed` or `Cancelled` still owes its teardown. Its on_crashed and
on_cancellation hooks try, but they run only when a process is left to run them (PrefectHQ/prefect
#15912, #12688), so a second automation starts the teardown deployment with the dead run's own
parameters. Teardown reads the world, so running it after a hook that already did is harmless.

Both are ensured (created or brought up to date, by name) when the runner registers its deployments
(flows/serve.py) and by `meshwright server automations` for a team server's deployments. This
module talks to the Prefect API only; it imports no flow.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.automations import (
    AutomationCore,
    ChangeFlowRunState,
    EventTrigger,
    Posture,
    ResourceSpecification,
    RunDeployment,
    SendNotification,
)
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import StateType

# The heartbeat the runs of meshwright's flows send (the runner's environment sets it; Prefect's
# minimum is 30 s), and how long a run may be silent before it counts as dead: three missed beats.
HEARTBEAT_SECONDS = 30
SILENCE = timedelta(seconds=3 * HEARTBEAT_SECONDS)

MESH_FLOWS = ("up-mesh", "verify-mesh", "mesh-smoke-test", "teardown-mesh", "provision-mesh", "reap-expired")
SMOKE_FLOW = "mesh-smoke-test"
CRASH_SILENT = "meshwright: crash runs that stopped sending heartbeats"
TEAR_DOWN = "meshwright: tear down a smoke test that crashed or was cancelled"
NOTIFY = "meshwright: tell someone a smoke test failed"

_FLOW_RUNS = ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"})
# A heartbeat may stop without the run being dead: it ended, or it waits (paused) for a person.
_ALIVE_OR_ENDED = {
    "prefect.flow-run.heartbeat",
    *(
        f"prefect.flow-run.{state}"
        for state in ("Completed", "Failed", "Cancelled", "Crashed", "Paused", "Suspended")
    ),
}


def _of_flows(*names: str) -> ResourceSpecification:
    return ResourceSpecification({"prefect.resource.role": "flow", "prefect.resource.name": list(names)})


def crash_silent_runs(*, silence: timedelta = SILENCE) -> AutomationCore:
    """A run of a meshwright flow that sent a heartbeat and then nothing for `silence` is Crashed."""
    trigger = EventTrigger(
        after={"prefect.flow-run.heartbeat"},
        expect=_ALIVE_OR_ENDED,
        match=_FLOW_RUNS,
        match_related=_of_flows(*MESH_FLOWS),
        for_each={"prefect.resource.id"},
        posture=Posture.Proactive,
        threshold=1,
        within=silence,
    )
    action = ChangeFlowRunState(
        state=StateType.CRASHED,
        name="Crashed",
        # Not forced: Prefect's orchestration then refuses to turn a run that ended (its Completed
        # event lost, say, while the server restarted) into a Crashed one.
        force=False,
        message=f"no heartbeat for {silence.total_seconds():.0f}s: the run's process died",
    )
    return AutomationCore(
        name=CRASH_SILENT,
        description="Marks a meshwright run Crashed when its process dies (its mesh slot frees itself).",
        trigger=trigger,
        actions=[action],
    )


def _carried(parameter: str) -> dict[str, Any]:
    """A parameter of the run that ended, passed on as it was (a spec document, a path, null)."""
    template = "{{ flow_run.parameters.get('" + parameter + "') | tojson }}"
    return {"__prefect_kind": "json", "value": {"__prefect_kind": "jinja", "template": template}}


def _smoke_test_ends(*states: str) -> EventTrigger:
    """A smoke test's run entering one of `states`."""
    return EventTrigger(
        expect={f"prefect.flow-run.{state}" for state in states},
        match=_FLOW_RUNS,
        match_related=_of_flows(SMOKE_FLOW),
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
    )


def tear_down_ended_smoke_tests(teardown: UUID) -> AutomationCore:
    """When a smoke test ends Crashed or Cancelled, run the teardown deployment `teardown` for its mesh."""
    trigger = _smoke_test_ends("Crashed", "Cancelled")
    parameters = {name: _carried(name) for name in ("spec", "connection", "kubeconfig")}
    action = RunDeployment(
        source="selected", deployment_id=teardown, parameters={**parameters, "wait": True}, job_variables=None
    )
    return AutomationCore(
        name=TEAR_DOWN,
        description="Deletes the mesh of a smoke test whose run could not tear it down itself.",
        trigger=trigger,
        actions=[action],
    )


def notify_failed_smoke_tests(block: UUID) -> AutomationCore:
    """When a smoke test ends Failed or Crashed, send its verdict through the notification block
    `block` (a Slack webhook, an email, any of Prefect's notification blocks)."""
    trigger = _smoke_test_ends("Failed", "Crashed")
    action = SendNotification(
        block_document_id=block,
        subject="meshwright: smoke test {{ flow_run.name }} ended {{ flow_run.state.name }}",
        body="Smoke test {{ flow_run.name }} ended {{ flow_run.state.name }}: {{ flow_run.state.message }}\n"
        "flow run {{ flow_run.id }} {{ flow_run|ui_url or '' }}",
    )
    return AutomationCore(
        name=NOTIFY,
        description="Sends a failed or crashed smoke test's verdict through the chosen notification block.",
        trigger=trigger,
        actions=[action],
    )


def notification_block(client: SyncPrefectClient, name: str) -> UUID:
    """The id of the notification block `name`, given as "<block type slug>/<block name>"
    (e.g. slack-webhook/mesh-alerts), as `prefect block ls` shows it."""
    slug, _, block = name.partition("/")
    if not block:
        raise ValueError(f"{name!r}: give the block as <type>/<name>, e.g. slack-webhook/mesh-alerts")
    return client.read_block_document_by_name(block, block_type_slug=slug).id


def ensure(client: SyncPrefectClient, wanted: list[AutomationCore]) -> list[UUID]:
    """Each automation exists once, as `wanted` says (matched by name; duplicates removed)."""
    ids = []
    for automation in wanted:
        found = client.read_automations_by_name(automation.name)
        for extra in found[1:]:
            client.delete_automation(extra.id)
        if found:
            client.update_automation(found[0].id, automation)
            ids.append(found[0].id)
        else:
            ids.append(client.create_automation(automation))
    return ids


def ensure_all(client: SyncPrefectClient, *, teardown: UUID, notify: UUID | None = None) -> list[UUID]:
    """meshwright's automations: the teardown one pointed at the deployment `teardown`, and, once a
    notification block is named (`notify`), the one that tells someone a smoke test failed (until
    then it does not exist: off)."""
    wanted = [crash_silent_runs(), tear_down_ended_smoke_tests(teardown)]
    return ensure(client, wanted + ([notify_failed_smoke_tests(notify)] if notify else []))
