"""Run the sandbox in the foreground, or start, find, stop and reset it in the background."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from meshwright.sandbox import store
from meshwright.sandbox.faults import Faults
from meshwright.sandbox.kube.fleet import operator_token
from meshwright.sandbox.settings import Latency, Layout
from meshwright.sandbox.world import World

START_TIMEOUT = 30.0


class SandboxNotRunning(Exception):
    pass


def serve(root: Path, *, latency: Latency, faults: Faults, ready: threading.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT; state is saved on the way out."""
    layout = Layout(root)
    previous = store.read_json(layout.daemon, {})
    world = World(root, latency=latency, faults=faults)
    try:
        world.start(port=previous.get("port", 0))
    except OSError:
        world.start(port=0)  # the old port is taken: clients must re-read the state
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
    return Faults(Faults.parse(yaml.safe_load(Path(path).read_text())) if path else [])


def health(root: Path) -> dict[str, Any] | None:
    info = store.read_json(Layout(root).daemon, {})
    if not info.get("gcp"):
        return None
    try:
        with urllib.request.urlopen(f"{info['gcp']}/_sandbox/health", timeout=2) as r:
            body: dict[str, Any] = json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return body if body.get("state") == str(root) else None


def start(root: Path, *, latency: str | None = None, faults: str | None = None) -> dict[str, Any]:
    """Start in the background unless already running; returns the status once healthy."""
    if health(root):
        return status(root)
    root.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "meshwright.sandbox", "serve", "--state", str(root)]
    cmd += ["--latency", latency] if latency else []
    cmd += ["--faults", str(Path(faults).resolve())] if faults else []
    with Layout(root).log.open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = Layout(root).log.read_text().strip().splitlines()[-5:]
            raise SandboxNotRunning("the sandbox exited at start:\n  " + "\n  ".join(tail))
        if health(root):
            return status(root)
        time.sleep(0.1)
    raise SandboxNotRunning(
        f"the sandbox did not become healthy within {START_TIMEOUT:.0f}s; see {Layout(root).log}"
    )


def status(root: Path) -> dict[str, Any]:
    info = store.read_json(Layout(root).daemon, {})
    if not health(root):
        raise SandboxNotRunning(
            f"no sandbox is running with state {root}; start one with `meshwright sandbox start`"
        )
    with urllib.request.urlopen(f"{info['gcp']}/_sandbox/status", timeout=5) as r:
        body: dict[str, Any] = json.loads(r.read())
    return {"running": True, **body}


def stop(root: Path, *, timeout: float = 15.0) -> bool:
    """Stop the daemon of `root`; False if none was running."""
    info = store.read_json(Layout(root).daemon, {})
    if not health(root) or not info.get("pid"):
        return False
    pid = int(info["pid"])
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
    """A kubeconfig for the running sandbox's clusters, one context per cluster named after it."""
    endpoints = status(root)["clusters"]
    if cluster is not None:
        if cluster not in endpoints:
            raise SandboxNotRunning(
                f"no running sandbox cluster named {cluster!r} (running: {', '.join(endpoints) or 'none'})"
            )
        endpoints = {cluster: endpoints[cluster]}
    layout, token = Layout(root), operator_token(Layout(root))
    cas = {p.parent.name: p for p in (layout.root / "ca").glob("*/*/*/ca.crt")}
    entries = []
    for name, url in sorted(endpoints.items()):
        ca = base64.b64encode(cas[name].read_bytes()).decode() if name in cas else ""
        entries.append((name, url, ca))
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": n, "cluster": {"server": u, "certificate-authority-data": ca}} for n, u, ca in entries
        ],
        "users": [{"name": f"{n}-operator", "user": {"token": token}} for n, _, _ in entries],
        "contexts": [{"name": n, "context": {"cluster": n, "user": f"{n}-operator"}} for n, _, _ in entries],
        "current-context": entries[0][0] if entries else "",
        "preferences": {},
    }
