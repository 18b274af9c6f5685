"""The graph a finished `up_mesh` run recorded in Prefect: each task run and the task runs it took
inputs from or waited for (Prefect's `task_inputs`), to compare with meshwright.dag."""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.sorting import FlowRunSort

from flows.mesh import IN_BODY
from meshwright import dag
from meshwright.spec import MeshSpec


def recorded_graph() -> dict[str, set[str]]:
    """Task run name -> the names of the task runs it came after, for the latest up-mesh run."""
    with get_client(sync_client=True) as client:
        latest = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["up-mesh"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )[0]
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[latest.id])))
    names = {r.id: r.name for r in runs}
    return {
        r.name: {
            names[i.id]
            for inputs in r.task_inputs.values()
            for i in inputs
            if getattr(i, "id", None) in names
        }
        for r in runs
    }


def planned_graph(spec: MeshSpec) -> dict[str, set[str]]:
    """meshwright.dag's steps that the flow submits as tasks, and what each comes after."""
    return {str(s.key): {str(k) for k in s.after} for s in dag.steps(spec) if s.key.kind not in IN_BODY}
