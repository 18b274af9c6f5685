"""Run the sandbox in the foreground, or start, find, stop and reset it in the background.

Everything but `serve` talks to a daemon through its contract (state files, loopback HTTP), so
the CLI commands that only look at a sandbox never load the emulator.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from meshwright import kubeconfig as kc
from meshwright.sandbox import contract, store
from meshwright.sandbox.contract import SandboxNotRunning, health
from meshwright.sandbox.settings import Latency, Layout

if TYPE_CHECKING:
    from meshwright.sandbox.faults import Faults

__all__ = ["SandboxNotRunning", "health", "kubeconfig", "reset", "serve", "start", "status", "stop"]

START_TIMEOUT = 30.0
# A daemon counts as started once it has answered health checks for this long without exiting:
# one that dies while loading its state must not be reported as running.
SETTLE_SECONDS = 0.5


def serve(
    root: Path,
    *,
    latency: Latency,
    faults: Faults,
    quotas: dict[str, dict[str, float]] | None = None,
    ready: threading.Event | None = None,
) -> None:
    """Run until SIGTERM/SIGINT; state is saved on the way out."""
    from meshwright.sandbox.world import World  # the emulator loads only in the daemon process

    layout = Layout(root)
    port = contract.daemon_info(root).get("port")  # a corrupt daemon.json is no reason not to start
    world = World(root, latency=latency, faults=faults, quotas=quotas)
    # The port of the last run if it is free, else any: clients re-read daemon.json.
    world.start(port=port if isinstance(port, int) else 0, or_any_port=True)
    assert world.server is not None
    store.write_json(layout.daemon, {"pid": os.getpid(), "port": world.server.port, "gcp": world.base_url()})
    store.write_json(layout.settings, {"latency": latency.as_dict()})
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"meshwright sandbox serving GCP at {world.base_url()} (state {root})", flush=True)
    if ready:
        ready.set()
    stop.wait()
    world.stop()


def load_faults(path: str | None) -> Faults:
    """The fault rules of a YAML file (none without a file)."""
    from meshwright.sandbox.faults import Faults

    return Faults(Faults.parse(yaml.safe_load(Path(path).read_text())) if path else [])


def start(
    root: Path, *, latency: str | None = None, faults: str | None = None, quotas: str | None = None
) -> dict[str, Any]:
    """Start in the background unless already running; returns the status once it serves."""
    if health(root):
        return status(root)
    store.ensure_dir(root)
    cmd = [sys.executable, "-m", "meshwright.sandbox", "serve", "--state", str(root)]
    cmd += ["--latency", latency] if latency else []
    cmd += ["--faults", str(Path(faults).resolve())] if faults else []
    cmd += ["--quotas", str(Path(quotas).resolve())] if quotas else []
    with store.open_private(Layout(root).log, "a") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    _wait_serving(root, proc)
    return status(root)


def _wait_serving(root: Path, proc: subprocess.Popen[bytes]) -> None:
    """Return once `proc` itself answers health checks and has kept answering for SETTLE_SECONDS."""
    deadline, healthy_since = time.monotonic() + START_TIMEOUT, None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxNotRunning(f"the sandbox exited at start:\n  {_log_tail(root)}")
        answer = health(root)
        if answer is None or answer.get("pid") != proc.pid:
            healthy_since = None
        elif healthy_since is None:
            healthy_since = time.monotonic()
        elif time.monotonic() - healthy_since >= SETTLE_SECONDS:
            return
        time.sleep(0.1)
    raise SandboxNotRunning(
        f"the sandbox did not become healthy within {START_TIMEOUT:.0f}s; see {Layout(root).log}"
    )


def _log_tail(root: Path, lines: int = 5) -> str:
    try:
        tail = Layout(root).log.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return "(no log)"
    return "\n  ".join(tail)


def status(root: Path) -> dict[str, Any]:
    """What the running sandbox of `root` serves; clusters as a list keyed by (project, location, name)."""
    if not health(root):
        raise SandboxNotRunning(
            f"no sandbox is running with state {root}; start one with `meshwright sandbox start`"
        )
    body = contract.get_json(f"{contract.endpoint(root)}{contract.STATUS_PATH}")
    if not isinstance(body, dict):
        raise SandboxNotRunning(f"the sandbox with state {root} gave a status that is not an object")
    return {"running": True, **body, "clusters": clusters_of(body)}


def clusters_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The clusters of a status answer, as {project, location, name, id, url} sorted by identity."""
    raw = body.get("clusters")
    found = [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
    fields = ("project", "location", "name", "url")
    found = [c for c in found if all(isinstance(c.get(f), str) for f in fields)]
    return sorted(found, key=lambda c: (c["project"], c["location"], c["name"]))


def context_names(clusters: list[dict[str, Any]]) -> list[str]:
    """A cluster's name where it is unique in the sandbox, else gcloud's `<project>_<location>_<name>`."""
    counts: dict[str, int] = {}
    for c in clusters:
        counts[c["name"]] = counts.get(c["name"], 0) + 1
    return [
        c["name"] if counts[c["name"]] == 1 else f"{c['project']}_{c['location']}_{c['name']}"
        for c in clusters
    ]


def stop(root: Path, *, timeout: float = 15.0) -> bool:
    """Stop the daemon of `root`; False if none was running.

    Only a pid the daemon wrote itself and still answers with is signalled (an in-process world
    of the tests writes none).
    """
    answer, pid = health(root), contract.daemon_info(root).get("pid")
    if not answer or not isinstance(pid, int) or answer.get("pid") != pid:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def reset(root: Path) -> None:
    """Stop the daemon and forget everything: clusters, objects, CAs."""
    stop(root)
    if root.exists():
        shutil.rmtree(root)


def kubeconfig(root: Path, *, cluster: str | None = None) -> dict[str, Any]:
    """A kubeconfig for the running sandbox's clusters, one context per cluster (see context_names).

    `cluster` picks one, by its context name or by its plain name when that is unique.
    """
    info = status(root)
    clusters = info["clusters"]
    chosen = list(zip(context_names(clusters), clusters, strict=True))
    if cluster is not None:
        chosen = [(n, c) for n, c in chosen if cluster in (n, c["name"])]
        if len(chosen) != 1:
            raise SandboxNotRunning(_no_such_cluster(cluster, context_names(clusters), len(chosen)))
    token = contract.operator_token(root)
    entries = [kc.Entry(n, c["url"], _ca(info["gcp"], c), {"token": token}) for n, c in chosen]
    return kc.document(entries)


def _no_such_cluster(cluster: str, names: list[str], matches: int) -> str:
    if matches > 1:
        return (
            f"{cluster!r} names {matches} clusters; use one of {', '.join(n for n in names if cluster in n)}"
        )
    return f"no running sandbox cluster named {cluster!r} (running: {', '.join(names) or 'none'})"


def _ca(gcp: str, cluster: dict[str, Any]) -> str:
    """The cluster's CA (base64 PEM), as GKE's API gives it to any client."""
    parts = (cluster["project"], cluster["location"], cluster["name"])
    quoted = [urllib.parse.quote(str(p), safe="") for p in parts]
    url = f"{gcp}/v1/projects/{quoted[0]}/locations/{quoted[1]}/clusters/{quoted[2]}"
    body = contract.get_json(url)
    return str(((body or {}).get("masterAuth") or {}).get("clusterCaCertificate", ""))
