"""Following a run through the API while Prefect is still writing it down."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from meshwright.cli import runs
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


class _Prefect:
    """A Prefect API that can be killed and started again on its address (a real socket)."""

    def __init__(self) -> None:
        self.state = "RUNNING"
        self.port = 0
        self.server: ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                state = {"type": api.state, "name": api.state.title(), "message": ""}
                self._send({"id": "run-1", "state": state} if "/flow_runs/" in self.path else {})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self._send([])

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kill(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


def test_following_rides_out_a_prefect_server_that_dies_and_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runs, "DRAIN_SECONDS", 0.1)  # this API sends no closing log line
    api = _Prefect()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if len(lines) == 1:  # the API went away; it comes back with the run finished
            api.state = "COMPLETED"

    def revive() -> None:
        if api.state == "COMPLETED" and api.server is not None and not api.server.socket.fileno() > 0:
            api.start()

    with runs.connect(f"http://127.0.0.1:{api.port}/api") as client:
        api.kill()
        outcome = runs.follow(client, "run-1", echo=echo, revive=revive)
    assert outcome.state == "COMPLETED"
    assert lines[0].startswith(
        f"the Prefect API at http://127.0.0.1:{api.port} is not answering (connection refused)"
    )
    assert "answers again" in lines[1]


def test_a_prefect_server_that_stays_away_ends_the_follow_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runs, "OUTAGE_SECONDS", 1.0)
    api = _Prefect()
    with runs.connect(f"http://127.0.0.1:{api.port}/api") as client:
        api.kill()
        with pytest.raises(runs.RunError) as raised:
            runs.follow(client, "run-1", echo=lambda line: None)
    said = str(raised.value)
    assert "not answering (connection refused) for 1s" in said
    assert "the same command follows it again" in said
    assert "\n" not in said


def test_an_expected_failure_is_told_in_two_lines_a_bug_keeps_its_traceback() -> None:
    trace = '\nTraceback (most recent call last):\n  File "x.py", line 1, in f\n    g()\n'
    ours = runs._told(
        "Task run failed" + trace + "meshwright.errors.OperationFailed: wait_cluster [east]: boom"
    )
    assert ours == "Task run failed\n  meshwright.errors.OperationFailed: wait_cluster [east]: boom"
    bug = "Task run failed" + trace + "KeyError: 'spec'"
    assert runs._told(bug) == bug
