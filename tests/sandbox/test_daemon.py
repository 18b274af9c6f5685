"""`meshwright sandbox start|status|kubeconfig|stop|reset` with a real background daemon."""

from __future__ import annotations

import http.server
import json
import os
import socket
import stat
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from meshwright.cli import app
from meshwright.sandbox import store
from meshwright.sandbox.settings import Layout
from meshwright.sandbox.world import World
from tests.support import gke_client, register, running_cluster


def meshwright(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshwright", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_daemon_lifecycle(tmp_path: Path) -> None:
    env = {**os.environ, "MESHWRIGHT_SANDBOX_STATE": str(tmp_path / "sb")}
    faults = tmp_path / "faults.yaml"
    faults.write_text("- api: gke\n  method: DELETE\n  status: 503\n  times: 1\n")
    assert (
        meshwright("sandbox", "start", "--latency", "create=0.2", "--faults", str(faults), env=env).returncode
        == 0
    )
    try:
        again = meshwright("sandbox", "start", env=env)
        assert again.returncode == 0, again.stderr
        status = json.loads(meshwright("sandbox", "status", "--json", env=env).stdout)
        assert status["gcp"].startswith("http://127.0.0.1:")
        assert status["state"] == str(tmp_path / "sb")
        assert status["clusters"] == []
        health = json.loads(
            __import__("urllib.request").request.urlopen(f"{status['gcp']}/_sandbox/health").read()
        )
        assert health["ok"] is True
        out = tmp_path / "kc"
        assert meshwright("sandbox", "kubeconfig", "-o", str(out), env=env).returncode == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert yaml.safe_load(out.read_text())["kind"] == "Config"
    finally:
        assert "stopped" in meshwright("sandbox", "stop", env=env).stdout
    gone = meshwright("sandbox", "status", "--json", env=env)
    assert gone.returncode == 1
    assert json.loads(gone.stdout)["running"] is False
    assert "removed" in meshwright("sandbox", "reset", env=env).stdout
    assert not (tmp_path / "sb").exists()


def test_bad_latency_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "MESHWRIGHT_SANDBOX_STATE": str(tmp_path / "sb")}
    result = meshwright("sandbox", "start", "--latency", "speed=9", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: unknown latency key(s) speed")


def test_daemon_that_exits_at_start_is_reported_not_running(tmp_path: Path) -> None:
    env = {**os.environ, "MESHWRIGHT_SANDBOX_STATE": str(tmp_path / "sb")}
    faults = tmp_path / "faults.yaml"
    faults.write_text("- api: nowhere\n")
    started = meshwright("sandbox", "start", "--faults", str(faults), env=env)
    assert started.returncode == 1
    assert started.stderr.startswith("error: the sandbox exited at start:")
    assert "sandbox running" not in started.stdout
    status = meshwright("sandbox", "status", env=env)
    assert (status.returncode, status.stderr.count("\n")) == (1, 1)


class _HealthyThenReset(http.server.BaseHTTPRequestHandler):
    """A daemon that answers its health check, then drops the connection on everything else."""

    state = ""

    def do_GET(self) -> None:
        if self.path == "/_sandbox/health":
            body = json.dumps({"ok": True, "pid": 1, "state": self.state}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()  # a reset, as a daemon crashing mid-answer gives

    def log_message(self, *args: object) -> None:
        pass


def test_status_of_a_daemon_dropping_connections_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    root = (tmp_path / "sb").resolve()
    _HealthyThenReset.state = str(root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HealthyThenReset)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        store.write_json(root / "daemon.json", {"gcp": f"http://127.0.0.1:{server.server_port}"})
        env = {**os.environ, "MESHWRIGHT_SANDBOX_STATE": str(root)}
        for args in (("sandbox", "status"), ("sandbox", "start"), ("sandbox", "kubeconfig")):
            result = meshwright(*args, env=env)
            assert result.returncode == 1, args
            assert result.stderr.startswith("error: the sandbox at http://127.0.0.1:"), args
            assert (result.stderr.count("\n"), "Traceback" in result.stderr) == (1, False), args
        as_json = meshwright("sandbox", "status", "--json", env=env)
        assert json.loads(as_json.stdout) == {
            "running": False,
            "state": str(root),
            "gcp": None,
            "clusters": [],
        }
    finally:
        server.shutdown()


def test_same_cluster_name_in_two_projects_gets_two_contexts(world: World, tmp_path: Path) -> None:
    register(world)
    gke = gke_client(world)
    for project in ("alpha-project", "beta-project"):
        running_cluster(gke, "web", parent=f"projects/{project}/locations/us-central1-a")
    running_cluster(gke, "solo", parent="projects/alpha-project/locations/us-central1-a")
    state = ["--state", str(world.layout.root)]
    names = ["alpha-project_us-central1-a_web", "beta-project_us-central1-a_web", "solo"]
    status = json.loads(CliRunner().invoke(app, ["sandbox", "status", "--json", *state]).output)
    assert [(c["project"], c["name"]) for c in status["clusters"]] == [
        ("alpha-project", "solo"),
        ("alpha-project", "web"),
        ("beta-project", "web"),
    ]
    text = CliRunner().invoke(app, ["sandbox", "status", *state]).output.splitlines()
    assert [line.split()[:2] for line in text[2:]] == [
        ["solo", "alpha-project/us-central1-a"],
        ["alpha-project_us-central1-a_web", "alpha-project/us-central1-a"],
        ["beta-project_us-central1-a_web", "beta-project/us-central1-a"],
    ]
    config = yaml.safe_load(CliRunner().invoke(app, ["sandbox", "kubeconfig", *state]).output)
    assert sorted(c["name"] for c in config["contexts"]) == names
    servers = {c["name"]: c["cluster"]["server"] for c in config["clusters"]}
    assert len(set(servers.values())) == 3
    assert all(c["cluster"]["certificate-authority-data"] for c in config["clusters"])
    one = yaml.safe_load(
        CliRunner().invoke(app, ["sandbox", "kubeconfig", "--cluster", "solo", *state]).output
    )
    assert [c["name"] for c in one["contexts"]] == ["solo"]
    ambiguous = CliRunner().invoke(app, ["sandbox", "kubeconfig", "--cluster", "web", *state])
    assert ambiguous.exit_code == 1
    assert "'web' names 2 clusters" in ambiguous.output


@pytest.mark.parametrize("cluster_id", ["../escaped", "a/b", "", "A1", "x" * 64, "nul\x00x", "-lead"])
def test_layout_refuses_a_cluster_id_that_could_leave_the_state_directory(cluster_id: str) -> None:
    layout = Layout(Path("/state"))
    with pytest.raises(ValueError, match="not a sandbox cluster id"):
        layout.ca_dir(cluster_id)
    with pytest.raises(ValueError, match="not a sandbox cluster id"):
        layout.kube_dir(cluster_id)
    assert layout.kube_dir("0f3a9c" * 5 + "ab") == Path("/state/kube/" + "0f3a9c" * 5 + "ab")


def test_a_corrupt_daemon_file_does_not_stop_a_start(tmp_path: Path) -> None:
    root = tmp_path / "sb"
    root.mkdir()
    (root / "daemon.json").write_bytes(b'{"port": 12, "gcp": "http://127.0.0.1:1"')  # torn write
    env = {**os.environ, "MESHWRIGHT_SANDBOX_STATE": str(root)}
    started = meshwright("sandbox", "start", env=env)
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith("sandbox running: GCP at http://127.0.0.1:")
        assert json.loads(meshwright("sandbox", "status", "--json", env=env).stdout)["running"] is True
    finally:
        meshwright("sandbox", "stop", env=env)
