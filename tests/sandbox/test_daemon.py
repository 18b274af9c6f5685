"""`meshwright sandbox start|status|kubeconfig|stop|reset` with a real background daemon."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import yaml


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
