"""The long-running process that serves meshwright's flows: `python -m flows.serve`.

Prefect's Runner (what `flow.serve()` / `serve()` use) registers one deployment per flow, named
`<flow>/meshwright`, polls the API for their runs and executes each in a child process; a UI
"Run", a UI "Retry", `prefect deployment run` and the meshwright CLI all go through it. The CLI
starts it in the background (meshwright/cli/server.py); it runs until stopped.

Why this and not a process worker: a worker starts every run as `python -m prefect.engine`,
which imports Prefect, Google's clients and the flows again (about 3 s here, for a flow of
0.2 s). The Runner holds the flow objects in memory, and its children are forked from a
forkserver that imported the flows once, so a run starts in a few tens of milliseconds. Teams
that outgrow one machine use the work-pool deployments of prefect.yaml instead.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import multiprocessing
import multiprocessing.forkserver
import os
import types
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import Flow

# Besides the flows, what a run imports on first use (measured in a child: the engines, Prefect's
# concurrency limits, anyio's backend under httpx, the API class of EndpointSlices); imported
# once by the forkserver, they cost its children nothing.
RUN_MODULES = [
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.concurrency.sync",
    "anyio._backends._asyncio",
    "kubernetes.client.api.discovery_v1_api",
]
POLL_SECONDS = 0.1


def _fork_runs() -> None:
    """Make the Runner's children fork from a preloaded forkserver instead of spawning afresh.

    Prefect's `run_flow_in_subprocess` asks multiprocessing for a "spawn" context (a new
    interpreter that imports everything again); it is the one call we redirect. The child is
    still a separate process, so cancellation (the runner kills it) and crash detection work as
    with spawn.
    """
    import prefect.flow_engine

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__, *SERVED, *RUN_MODULES])
    prefect.flow_engine.multiprocessing = types.SimpleNamespace(  # type: ignore[assignment]
        get_context=lambda method: ctx, context=multiprocessing.context
    )
    multiprocessing.forkserver.ensure_running()


SERVED = {
    "flows.mesh": "up_mesh",
    "flows.verify": "verify_mesh",
    "flows.smoke": "mesh_smoke_test",
    "flows.teardown": "teardown_mesh",
    "flows.provision": "provision_mesh",
    "flows.reap": "reap_expired",
}


class _ServedFlow(Flow):
    """A served flow that travels to its run's process as "import it again", not by value.

    The Runner pickles the flow for the child. By value, cloudpickle keeps only the globals the
    code names, so the annotations (`connection: MeshwrightTarget | str | None`, postponed by
    `from __future__ import annotations`) no longer resolve and parameter validation fails.
    """

    _source: tuple[str, str]

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return served, self._source


def served(module: str, name: str) -> Flow:
    """The flow `module.name` as the runner serves it: its result persisted as JSON, so the CLI
    can print a run's report (no secret is in these results)."""
    flow = getattr(importlib.import_module(module), name).with_options(
        persist_result=True, result_serializer="json"
    )
    flow.__class__ = _ServedFlow
    flow._source = (module, name)
    return flow


def main() -> None:
    from prefect.client.orchestration import get_client
    from prefect.runner import Runner

    from meshwright import automations
    from meshwright.cli.server import READY_FILE, RUNNER_DEPLOYMENT, home
    from meshwright.settings import settings

    _fork_runs()
    runner = Runner(name="meshwright", query_seconds=POLL_SECONDS, pause_on_shutdown=False)
    deployments = {
        flow.name: runner.add_flow(
            flow, name=RUNNER_DEPLOYMENT, description=flow.description, tags=["meshwright", "served"]
        )
        for flow in (served(module, name) for module, name in SERVED.items())
    }
    with get_client(sync_client=True) as client:  # what acts when a run's process cannot
        teardown = deployments["teardown-mesh"]
        assert isinstance(teardown, UUID)  # add_flow is sync_compatible: called here, it returns the id
        named = settings().notify_block
        notify = automations.notification_block(client, named) if named else None
        automations.ensure_all(client, teardown=teardown, notify=notify)
    ready = Path(os.environ.get("PREFECT_HOME") or home()) / READY_FILE
    ready.write_text(json.dumps({"pid": os.getpid()}))
    asyncio.run(runner.start())


if __name__ == "__main__":
    main()
