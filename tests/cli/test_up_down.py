"""`meshwright up` killed midway, rerun, `status`, `down`: the real CLI in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from meshwright.sandbox import daemon

SPEC = {
    "name": "clim",
    "project": "demo-project",
    "clusters": [
        {"name": "central", "location": "us-central1-a"},
        {"name": "west", "location": "us-west1-b", "primary": "central"},
        {"name": "east", "location": "us-east1-b", "primary": "central"},
    ],
}


def cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshwright", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def world(root: Path) -> tuple[list[str], list[str]]:
    info = daemon.status(root)
    import urllib.request

    with urllib.request.urlopen(f"{info['gcp']}/v1/projects/demo-project/locations/-/clusters") as r:
        clusters = sorted(f"{c['name']}:{c['status']}" for c in json.loads(r.read()).get("clusters", []))
    with urllib.request.urlopen(f"{info['gcp']}/compute/v1/projects/demo-project/global/firewalls") as r:
        rules = sorted(f["name"] for f in json.loads(r.read()).get("items", []))
    return clusters, rules


@pytest.mark.slow
def test_up_killed_midway_then_rerun_converges_and_down_removes_everything(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    env = {**os.environ, "MESHWRIGHT_SANDBOX_STATE": str(root), "PREFECT_HOME": str(tmp_path / "prefect")}
    spec = tmp_path / "mesh.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    daemon.start(root, latency="create=4,delete=0.3")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "meshwright", "up", str(spec)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while len(world(root)[0]) < 3:
            assert time.monotonic() < deadline, "the clusters never started"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert all(c.endswith(":PROVISIONING") for c in world(root)[0])

        up = cli("up", "--json", str(spec), env=env)
        assert up.returncode == 0, up.stderr[-2000:]
        report = json.loads(up.stdout)
        assert [c["name"] for c in report["clusters"]] == ["central", "west", "east"]
        assert all(s["finished"] >= s["started"] for s in report["steps"])
        assert world(root) == (["central:RUNNING", "east:RUNNING", "west:RUNNING"], ["meshwright-clim-pods"])
        token = (root / "operator-token").read_text().strip()
        assert token not in up.stdout + up.stderr

        status = cli("status", str(spec), env=env)
        assert "firewall meshwright-clim-pods" in status.stdout

        down = cli("down", str(spec), env=env)
        assert down.returncode == 0, down.stderr[-2000:]
        assert "deleted 3 cluster(s)" in down.stdout
        assert world(root) == ([], [])
    finally:
        daemon.reset(root)


def test_up_with_an_invalid_spec_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    env = {**os.environ, "MESHWRIGHT_SANDBOX_STATE": str(root)}
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "clusters": [{"name": "central", "location": "mars"}]}))
    result = cli("up", str(spec), env=env, timeout=60)
    assert result.returncode == 2
    assert "clusters[0].location: 'mars' is neither a GCP zone" in result.stderr
    assert not root.exists()


def test_up_failing_preflight_is_one_clear_line_with_what_to_do(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    env = {k: v for k, v in os.environ.items() if k != "MESHWRIGHT_SANDBOX_STATE"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    spec = tmp_path / "mesh.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "network": "mesh-vpc"}))
    try:
        result = cli("up", "--state", str(root), str(spec), env=env)
        assert result.returncode == 1
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors == [
            "error: check_network: network 'mesh-vpc' does not exist in project demo-project; create it or set `network:` in the spec"
        ]
        assert f"`meshwright down {spec}` removes it" in result.stderr
        assert world(root) == ([], [])
    finally:
        daemon.reset(root)
