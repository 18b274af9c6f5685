"""Runs of meshwright's deployments, triggered and followed through Prefect's REST API.

The CLI creates a flow run of a served deployment, streams its logs, prints its result and
exits with its final state; Ctrl-C asks Prefect to cancel the run (the runner then stops it and
runs its on_cancellation hook).

Speaks httpx only (no Prefect import): it runs in the CLI's process, where every import is paid
by every command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from meshwright.errors import MeshwrightError, PermanentError
from meshwright.spec import MeshSpec, load_spec

FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
POLL_SECONDS = 0.1
DRAIN_SECONDS = 5.0
LOG_LOOKBACK = timedelta(seconds=10)
RETRY_DELAYS = (0.5, 1, 2, 4, 8)
EXIT_CANCELLED = 130
_PREFECT_PREFIXES = ("Flow run encountered an exception: ", "Task run encountered an exception: ")


class RunError(PermanentError):
    """A deployment run could not be created or followed."""


class ApiGone(RunError):
    """The Prefect API did not answer at all: refused, dropped or timed out (not an HTTP error)."""


OUTAGE_SECONDS = 120.0
_GONE = {
    httpx.ConnectError: "connection refused",
    httpx.RemoteProtocolError: "connection dropped",
    httpx.ReadError: "connection dropped",
    httpx.TimeoutException: "timed out",
}


def _why(error: httpx.TransportError) -> str:
    return next((why for kind, why in _GONE.items() if isinstance(error, kind)), type(error).__name__)


@dataclass
class Outcome:
    """How a followed run ended."""

    id: str
    state: str
    message: str
    seconds: float
    result: Any = None
    ui: str = ""

    @property
    def exit_code(self) -> int:
        return {"COMPLETED": 0, "CANCELLED": EXIT_CANCELLED}.get(self.state, 1)

    @property
    def problem(self) -> str:
        """The failure in one paragraph, without Prefect's wrapping ('... exception: Class: ')."""
        text = self.message
        for prefix in _PREFECT_PREFIXES:
            text = text.removeprefix(prefix)
        head, sep, rest = text.partition(": ")
        return rest if sep and head.isidentifier() and head[:1].isupper() else text


@dataclass
class Follower:
    """Polls one flow run's state and new log lines."""

    client: httpx.Client
    run_id: str
    seen: set[str] = field(default_factory=set)
    task_names: dict[str, str] = field(default_factory=dict)
    subflows: dict[str, str] = field(default_factory=dict)
    after: str | None = None

    def state(self) -> dict[str, Any]:
        return _json(self.client.get(f"/flow_runs/{self.run_id}"))

    def _find_subflows(self) -> None:
        """Runs started inside the run (up, verify and down of the smoke test) log under their own id."""
        parents = [self.run_id, *self.subflows]
        body = {"flow_runs": {"parent_flow_run_id": {"any_": parents}}, "limit": 200}
        for run in _json(self.client.post("/flow_runs/filter", json=body)):
            self.subflows.setdefault(run["id"], run["name"])

    def new_logs(self) -> list[str]:
        return [self._line(log) for log in self._new()]

    def _new(self) -> list[dict[str, Any]]:
        self._find_subflows()
        body: dict[str, Any] = {
            "logs": {"flow_run_id": {"any_": [self.run_id, *self.subflows]}},
            "sort": "TIMESTAMP_ASC",
            "limit": 200,
        }
        if self.after:  # logs arrive in batches, a subflow's a little late: look back, drop the seen
            since = datetime.fromisoformat(self.after.replace("Z", "+00:00")) - LOG_LOOKBACK
            body["logs"]["timestamp"] = {"after_": since.isoformat()}
        fresh = []
        for log in _json(self.client.post("/logs/filter", json=body)):
            if log["id"] in self.seen:
                continue
            self.seen.add(log["id"])
            self.after = log["timestamp"]
            fresh.append(log)
        return fresh

    def drain(self) -> Iterator[str]:
        """The run's last lines, once its state is final. Prefect sends logs in batches (every 2 s by
        default, PREFECT_LOGGING_TO_API_BATCH_INTERVAL), so they trail the state: keep reading until
        the run's own closing line ("Finished in state ...") has come, or DRAIN_SECONDS passed."""
        deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            logs = self._new()
            yield from (self._line(log) for log in logs)
            if any(_closing(log, self.run_id) for log in logs) or time.monotonic() > deadline:
                return
            time.sleep(POLL_SECONDS)

    def _line(self, log: dict[str, Any]) -> str:
        stamp = (
            datetime.fromisoformat(log["timestamp"].replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
        )
        who = self._task_name(log.get("task_run_id")) or (
            f"{self.subflows[log['flow_run_id']]}: " if log.get("flow_run_id") in self.subflows else ""
        )
        return f"{stamp} {_LEVELS.get(log['level'], str(log['level'])):<7} {who}{_told(log['message'])}"

    def _task_name(self, task_run_id: str | None) -> str:
        if not task_run_id:
            return ""
        if task_run_id not in self.task_names:
            found = self.client.get(f"/task_runs/{task_run_id}")
            if found.status_code == 404:  # its log came before its record (Prefect writes runs from events)
                return ""
            self.task_names[task_run_id] = _json(found).get("name", "?")
        return f"{self.task_names[task_run_id]}: "


def _told(message: str) -> str:
    """A log line as a person reads it: Prefect's engine logs an expected failure (one of meshwright's
    own errors, which already says what and where) with its whole traceback; keep its first and last
    lines. Any other exception keeps its traceback: that one is a bug to report."""
    head, sep, trace = message.partition("\nTraceback (most recent call last):")
    last = trace.strip().splitlines()[-1] if sep and trace.strip() else ""
    return f"{head}\n  {last}" if last.startswith("meshwright.errors.") else message


def _closing(log: dict[str, Any], run_id: str) -> bool:
    """The flow engine's last line of a run: `Finished in state Completed()` and the like."""
    own = log.get("flow_run_id") == run_id and not log.get("task_run_id")
    return own and str(log.get("message", "")).startswith("Finished in state")


_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


def _json(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RunError(
            f"Prefect API {response.request.method} {response.request.url.path}: HTTP {response.status_code} {response.text[:300]}",
            step="run",
        )
    return response.json()


class _Retrying(httpx.HTTPTransport):
    """Retries what Prefect's own client retries: a busy server's 503 and 429 (SQLite under load
    answers 503 "database is locked"), with the same short backoff, five times at most."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._retrying(request)
        except httpx.TransportError as e:  # one line for the user, not httpx's traceback
            where = f"{request.url.scheme}://{request.url.netloc.decode()}"
            raise ApiGone(f"the Prefect API at {where} is not answering ({_why(e)})", step="run") from None

    def _retrying(self, request: httpx.Request) -> httpx.Response:
        for delay in RETRY_DELAYS:
            response = super().handle_request(request)
            if response.status_code not in (429, 503):
                return response
            response.close()
            time.sleep(delay)
        return super().handle_request(request)


@contextmanager
def connect(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=30, transport=_Retrying()) as client:
        yield client


def create_run(client: httpx.Client, deployment: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """A new flow run of `deployment` ("flow-name/deployment-name"), scheduled now."""
    found = client.get(f"/deployments/name/{deployment}")
    if found.status_code == 404:
        raise RunError(f"no deployment {deployment} on the Prefect API: is the runner serving?", step="run")
    created = client.post(
        f"/deployments/{_json(found)['id']}/create_flow_run", json={"parameters": parameters}
    )
    return dict(_json(created))


ACTIVE = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")


def in_flight(client: httpx.Client, mesh: str, deployment: str) -> dict[str, Any] | None:
    """The oldest run of a served deployment (named `deployment`) that is about `mesh` and has not
    ended: it holds the mesh's slot, or will (flows/_slots.py). Its `flow_name` is filled in."""
    body = {
        "flow_runs": {"state": {"type": {"any_": list(ACTIVE)}}},
        "deployments": {"name": {"any_": [deployment]}},
        "sort": "EXPECTED_START_TIME_ASC",
        "limit": 200,
    }
    for run in _json(client.post("/flow_runs/filter", json=body)):
        if _mesh_of((run.get("parameters") or {}).get("spec")) == mesh:
            run["flow_name"] = _json(client.get(f"/flows/{run['flow_id']}")).get("name", "")
            return dict(run)
    return None


def resume_paused(client: httpx.Client, mesh: str, run_input: dict[str, Any]) -> dict[str, Any]:
    """Resume the paused run about `mesh` (a served run or its `up` subflow) with `run_input`, as the
    UI's Resume does; RunError when none waits."""
    body = {"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}, "sort": "START_TIME_DESC", "limit": 200}
    paused = [
        r
        for r in _json(client.post("/flow_runs/filter", json=body))
        if _mesh_of((r.get("parameters") or {}).get("spec")) == mesh
    ]
    if not paused:
        raise RunError(f"no run of mesh {mesh} is paused waiting for an answer", step="approve")
    run = paused[0]
    answer = _json(client.post(f"/flow_runs/{run['id']}/resume", json={"run_input": run_input}))
    if answer.get("status") != "ACCEPT":
        reason = (answer.get("details") or {}).get("reason") or answer.get("status")
        raise RunError(f"flow run {run['name']} could not be resumed: {reason}", step="approve")
    return dict(run)


def _mesh_of(spec: Any) -> str | None:
    """The mesh a run's `spec` parameter names: the spec itself, or the path of its file."""
    if isinstance(spec, dict):
        return str(spec.get("name") or "") or None
    if isinstance(spec, str):
        try:
            return load_spec(spec).name
        except MeshwrightError:
            return None
    return None


def spec_parameter(client: httpx.Client, deployment: str, mesh: MeshSpec, path: Path) -> Any:
    """The spec itself when the deployment's flow takes a MeshSpec (nothing to read on the runner,
    and the UI shows its fields), else the spec file's absolute path."""
    found = client.get(f"/deployments/name/{deployment}")
    schema = _json(found).get("parameter_openapi_schema") or {} if found.status_code == 200 else {}
    spec = (schema.get("properties") or {}).get("spec") or {}
    kinds = [spec, *spec.get("anyOf", [])]
    if any("$ref" in k or k.get("type") == "object" for k in kinds):
        return mesh.model_dump(mode="json", exclude_defaults=True)
    return str(path.expanduser().resolve())


def cancel(client: httpx.Client, run_id: str) -> None:
    """Ask Prefect to cancel the run; the runner stops its process and runs on_cancellation."""
    state = {
        "type": "CANCELLING",
        "name": "Cancelling",
        "message": "cancelled from the meshwright CLI (Ctrl-C)",
    }
    _json(client.post(f"/flow_runs/{run_id}/set_state", json={"state": state, "force": True}))


def follow(
    client: httpx.Client,
    run_id: str,
    *,
    echo: Callable[[str], None],
    revive: Callable[[], None] = lambda: None,
) -> Outcome:
    """Stream the run's logs until it ends; Ctrl-C cancels it and keeps following until it has.

    The run belongs to the server and the runner, not to this process: when the API stops
    answering, wait for it (calling `revive`, which may start a local server again) and go on
    where the logs stopped; give up after OUTAGE_SECONDS with one line saying where the run is."""
    follower = Follower(client, run_id)
    started = time.monotonic()
    cancelled = False
    while True:
        try:
            run = follower.state()
            for line in follower.new_logs():
                echo(line)
            if run["state"]["type"] in FINAL:
                for line in follower.drain():
                    echo(line)
                return _outcome(run, started)
            time.sleep(POLL_SECONDS)
        except ApiGone as e:
            _wait_for_api(client, e, echo=echo, revive=revive)
        except KeyboardInterrupt:
            if cancelled:
                raise
            cancelled = True
            echo("cancelling the run (Ctrl-C again to stop following; the run's teardown goes on)")
            cancel(client, run_id)


def _wait_for_api(
    client: httpx.Client, gone: ApiGone, *, echo: Callable[[str], None], revive: Callable[[], None]
) -> None:
    echo(f"{gone.message}; waiting up to {OUTAGE_SECONDS:.0f}s for it (the run goes on without this command)")
    deadline = time.monotonic() + OUTAGE_SECONDS
    while time.monotonic() < deadline:
        try:
            revive()
            if client.get("/health").status_code == 200:
                echo("the Prefect API answers again; following the run")
                return
        except (ApiGone, PermanentError):
            pass
        time.sleep(1.0)
    raise RunError(
        f"{gone.message} for {OUTAGE_SECONDS:.0f}s; the run may still be going: once the API is back, "
        "the same command follows it again",
        step="run",
    )


def _outcome(run: dict[str, Any], started: float) -> Outcome:
    state = run["state"]
    return Outcome(
        id=run["id"],
        state=state["type"],
        message=state.get("message") or state.get("name") or "",
        seconds=time.monotonic() - started,
        result=read_result(state.get("data")) if state["type"] == "COMPLETED" else None,
    )


KEPT_WAIT_SECONDS = 3.0


def kept_result(client: httpx.Client, run_id: str, task_run: str, *, wait: float = KEPT_WAIT_SECONDS) -> Any:
    """The persisted result of the run's task run named `task_run` (how a verify run keeps its report
    when the run itself fails, its own result then being the error); None when there is none.

    Prefect records task runs from events, a moment after the run's own state: a task run not
    there yet is waited for, `wait` seconds at most."""
    body = {
        "flow_runs": {"id": {"any_": [run_id]}},
        "task_runs": {"name": {"any_": [task_run]}, "state": {"type": {"any_": ["COMPLETED"]}}},
        "limit": 1,
    }
    deadline = time.monotonic() + wait
    while not (found := _json(client.post("/task_runs/filter", json=body))) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    return read_result((found[0].get("state") or {}).get("data")) if found else None


def read_result(data: Any) -> Any:
    """A completed run's result, when the runner persisted it as JSON in local storage (it does for
    the flows it serves); None otherwise. Pydantic models come back as their field dicts."""
    key = (data or {}).get("storage_key") if isinstance(data, dict) else None
    if not key or not Path(key).is_file():
        return None
    stored = json.loads(Path(key).read_text())
    if isinstance(stored, dict) and {"metadata", "result"} <= stored.keys():  # a full result record
        stored = stored["result"]
        stored = json.loads(stored) if isinstance(stored, str) else stored
    return _plain(stored)


def _plain(value: Any) -> Any:
    """Prefect's JSON serializer wraps objects as {"__class__": ..., "data": ...}; unwrap them."""
    if isinstance(value, dict):
        if "__class__" in value and "data" in value:
            return _plain(value["data"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
