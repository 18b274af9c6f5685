"""Following a run through the API while Prefect is still writing it down."""

from __future__ import annotations

import httpx

from meshwright.cli.runs import Follower


def test_a_log_of_a_task_run_not_recorded_yet_is_shown_without_its_name_not_a_failure() -> None:
    recorded: set[str] = set()

    def api(request: httpx.Request) -> httpx.Response:
        task_run = request.url.path.rsplit("/", 1)[-1]
        if task_run not in recorded:
            return httpx.Response(404, json={"detail": "Task not found"})
        return httpx.Response(200, json={"id": task_run, "name": "install_istiod[west]"})

    with httpx.Client(base_url="http://prefect/api", transport=httpx.MockTransport(api)) as client:
        follower = Follower(client, "run-1")
        assert follower._task_name("t1") == ""  # its record arrives after its first log line
        recorded.add("t1")
        assert follower._task_name("t1") == "install_istiod[west]: "


def test_the_last_lines_of_a_finished_run_are_read_until_its_closing_line_arrives() -> None:
    """Prefect sends logs in batches, after the state: the follower keeps reading for them."""
    batches = [
        [],
        [{"id": "1", "flow_run_id": "run-1", "level": 20, "message": "traffic converged"}],
        [{"id": "2", "flow_run_id": "run-1", "level": 20, "message": "Finished in state Completed()"}],
    ]

    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/flow_runs/filter"):
            return httpx.Response(200, json=[])
        batch = batches.pop(0) if batches else []
        stamped = [{**log, "timestamp": "2026-12-06T14:00:00+00:00", "task_run_id": None} for log in batch]
        return httpx.Response(200, json=stamped)

    with httpx.Client(base_url="http://prefect/api", transport=httpx.MockTransport(api)) as client:
        lines = list(Follower(client, "run-1").drain())
    assert [line.split("INFO    ", 1)[1] for line in lines] == [
        "traffic converged",
        "Finished in state Completed()",
    ]
    assert batches == []
