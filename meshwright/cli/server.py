"""The local Prefect server and the process that serves meshwright's flows, both kept running.

Without `PREFECT_API_URL`, the CLI starts (once) a `prefect server` in the background with its
home (database, result storage, logs) under `.meshwright/prefect`, and reuses it afterwards. With
`PREFECT_API_URL` set (a team server, Prefect Cloud), no server is started. Either way the flows
run in one long-lived runner process (`flows/serve.py`) that imported them once; the CLI only
triggers deployment runs through the API (meshwright/cli/runs.py).

This module speaks HTTP with the standard library and httpx only and never imports Prefect, so a
warm `meshwright up` pays neither for Prefect's import nor for the flows'.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from meshwright.errors import PermanentError
from meshwright.files import write_atomic

HOME_ENV = "MESHWRIGHT_PREFECT_HOME"
DEFAULT_HOME = Path(".meshwright") / "prefect"
SERVER_FILE = "server.json"
RUNNER_FILE = "runner.json"
READY_FILE = "runner-ready.json"
DEFAULT_PORT = 4200
SERVER_START_TIMEOUT = 90.0
RUNNER_START_TIMEOUT = 120.0
# The deployments the runner serves are named "<flow name>/<RUNNER_DEPLOYMENT>".
RUNNER_DEPLOYMENT = "meshwright"
LEASES_ON_DISK = "prefect.server.concurrency.lease_storage.filesystem"
# As meshwright/automations.py (not imported here: it imports Prefect); a test pins them equal.
HEARTBEAT_SECONDS = 30
# Where the code the runner imported lives: a change there means the runner must restart.
_CODE_DIRS = ("flows", "tasks", "meshwright")


class ServerError(PermanentError):
    """The local Prefect server or the runner could not be started or reached."""


@dataclass(frozen=True)
class Api:
    """A Prefect API the CLI talks to; `local` when meshwright started it."""

    url: str
    local: bool

    @property
    def ui(self) -> str:
        return self.url.removesuffix("/api")


def home(explicit: str | Path | None = None) -> Path:
    """The local server's PREFECT_HOME: `explicit`, else $MESHWRIGHT_PREFECT_HOME, else .meshwright/prefect."""
    return Path(explicit or os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser().resolve()


def _read(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def healthy(url: str, *, timeout: float = 2.0) -> bool:
    """Whether a Prefect API answers its health check."""
    try:
        return httpx.get(f"{url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def status(root: Path) -> Api | None:
    """The local server of `root` if it runs and answers, else None."""
    info = _read(root / SERVER_FILE)
    url = info.get("url")
    if isinstance(url, str) and _alive(info.get("pid")) and healthy(url):
        return Api(url=url, local=True)
    return None


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise ServerError("no free port on 127.0.0.1 for the Prefect server", step="server")


def _prefect_env(root: Path, api_url: str | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "PREFECT_HOME": str(root),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    if api_url:  # the runner's environment: its runs send heartbeats (meshwright/automations.py)
        env["PREFECT_API_URL"] = api_url
        env.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_SECONDS))
    return env


def _spawn(args: list[str], *, env: dict[str, str], log: Path, cwd: Path | None = None) -> int:
    """A detached background process (own session, so a Ctrl-C of the CLI does not reach it) that
    creates its files for its user alone (umask 077): the server's database holds Prefect's block
    encryption key beside the encrypted blocks (the mesh's root CA among them), its result storage
    and logs what the runs wrote."""
    private(log.parent)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as out:
        proc = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=0o077,
        )
    return proc.pid


def _write(path: Path, info: dict[str, object]) -> None:
    write_atomic(path, json.dumps(info).encode(), mode=0o600)


def private(root: Path) -> None:
    """`root` and everything under it for its owner alone: directories 0700, files 0600 (a home
    made by an earlier version, or by Prefect before this, is tightened too)."""
    if root.parent.name == ".meshwright":  # the default home's parent holds kubeconfigs and roots too
        root.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    root.chmod(0o700)
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        path.chmod(0o700 if path.is_dir() else 0o600)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One starter at a time per home: two commands started together must not start two servers
    (or two runners), of which the state file would remember only one."""
    private(root)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def start(root: Path, *, port: int = DEFAULT_PORT) -> Api:
    """Start the local server of `root` unless it already answers; wait until it is healthy."""
    running = status(root)
    if running:
        return running
    with _locked(root):
        return status(root) or _start(root, port)


def _start(root: Path, port: int, *, exact: bool = False) -> Api:
    chosen = port if exact else _free_port(port)
    url = f"http://127.0.0.1:{chosen}/api"
    prefect = str(Path(sys.executable).with_name("prefect"))
    args = [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(chosen)]
    # The UI asks the API at PREFECT_UI_API_URL, which otherwise stays :4200 whatever --port says.
    env = {**_prefect_env(root), "PREFECT_SERVER_API_PORT": str(chosen), "PREFECT_UI_API_URL": url}
    env["PREFECT_UI_URL"] = url.removesuffix("/api")  # the links notifications carry
    # Concurrency leases on disk, not in the server's memory: a server killed and started again
    # would otherwise forget the lease of a held mesh slot, whose slot then stays taken for good
    # (the repossessor frees only the leases it knows). A team server wants the same (README).
    env.setdefault("PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE", LEASES_ON_DISK)
    pid = _spawn(args, env=env, log=root / "server.log")
    _write(root / SERVER_FILE, {"pid": pid, "url": url, "started": time.time()})
    _wait(lambda: healthy(url), pid, SERVER_START_TIMEOUT, f"the Prefect server ({root / 'server.log'})")
    return Api(url=url, local=True)


def _wait(ready: object, pid: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        if not _alive(pid):
            raise ServerError(f"{what} exited during start-up; see its log", step="server")
        if time.monotonic() > deadline:
            raise ServerError(f"{what} did not answer within {timeout:.0f}s", step="server")
        time.sleep(0.2)


def _terminate(pid: object, *, grace: float = 5.0) -> bool:
    """SIGTERM the process group meshwright started (it leads its own session), then SIGKILL.

    An idle runner or server is gone within 3 s; one busy with runs can take its time, and what it
    leaves is safe to cut: SQLite's journal keeps the database whole, and a run killed mid-way is
    marked Crashed by the heartbeat automation (meshwright/automations.py)."""
    if not isinstance(pid, int) or not _alive(pid):
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    return True


def stop(root: Path) -> bool:
    """Stop the runner and the server of `root` (only the processes meshwright started)."""
    stopped_runner = _terminate(_read(root / RUNNER_FILE).get("pid"))
    stopped_server = _terminate(_read(root / SERVER_FILE).get("pid"))
    for name in (RUNNER_FILE, SERVER_FILE):
        (root / name).unlink(missing_ok=True)
    return stopped_runner or stopped_server


def revive(root: Path, target: Api) -> None:
    """Start the local server of `root` again, on its old address, if its process is gone (the
    runner keeps serving that address); a team server is not ours to start."""
    if not target.local or _alive(_read(root / SERVER_FILE).get("pid")):
        return
    port = httpx.URL(target.url).port or DEFAULT_PORT
    with _locked(root):
        if status(root) is None and not _alive(_read(root / SERVER_FILE).get("pid")):
            _start(root, port, exact=True)


def api(root: Path) -> Api:
    """The API the CLI uses: $PREFECT_API_URL as is, else the local server (started if needed)."""
    given = os.environ.get("PREFECT_API_URL")
    if given:
        return Api(url=given.rstrip("/"), local=False)
    return start(root)


def code_version(project: Path) -> str:
    """The newest modification time of the flows' code: the runner restarts when it changes."""
    newest = max(
        (p.stat().st_mtime for d in _CODE_DIRS for p in (project / d).rglob("*.py")),
        default=0.0,
    )
    return f"{newest:.6f}"


def runner_status(root: Path, target: Api) -> dict[str, object] | None:
    """What the running runner wrote about itself, if it runs and serves `target`."""
    info = _read(root / RUNNER_FILE)
    if info.get("api") == target.url and _alive(info.get("pid")):
        return info
    return None


def ensure_runner(root: Path, target: Api, project: Path) -> dict[str, object]:
    """The runner serving the flows for `target`, started (or restarted for new code) if needed."""
    version = code_version(project)
    info = runner_status(root, target)
    if info and info.get("code") == version:
        return info
    with _locked(root):
        return _restart_runner(root, target, project, version)


def _restart_runner(root: Path, target: Api, project: Path, version: str) -> dict[str, object]:
    info = runner_status(root, target)
    if info and info.get("code") == version:
        return info  # another command started it while this one waited
    _terminate(_read(root / RUNNER_FILE).get("pid"))  # old code, or serving an API that is gone
    # Not `-m flows.serve`: its module must be importable as flows.serve for the runs' processes.
    args = [sys.executable, "-c", "from flows.serve import main; main()"]
    pid = _spawn(args, env=_prefect_env(root, target.url), log=root / "runner.log", cwd=project)
    info = {"pid": pid, "api": target.url, "code": version, "started": time.time()}
    _write(root / RUNNER_FILE, info)
    _wait(lambda: _serving(root, pid), pid, RUNNER_START_TIMEOUT, f"the flow runner ({root / 'runner.log'})")
    return info


def _serving(root: Path, pid: int) -> bool:
    """The runner writes READY_FILE (its pid) once every deployment is registered, just before polling."""
    return _read(root / READY_FILE).get("pid") == pid
