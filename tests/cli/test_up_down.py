"""`meshwright up` cancelled midway with Ctrl-C, rerun, `status`, `down`: the real CLI in subprocesses,
running the served deployments of one local Prefect server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from meshwright.sandbox import daemon

SPEC = {
    "name": "clim",
    "project": "demo-project",
    "clusters": [
        {"name": "central", "location": "us-central1-a"},
        {"name": "west", "location": "us-west1-b"},
        {"name": "east", "location": "us-east1-b"},
    ],
}


def cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshwright", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def world(root: Path) -> tuple[list[str], list[str]]:
    info = daemon.status(root)
    with urllib.request.urlopen(f"{info['gcp']}/v1/projects/demo-project/locations/-/clusters") as r:
        clusters = sorted(f"{c['name']}:{c['status']}" for c in json.loads(r.read()).get("clusters", []))
    with urllib.request.urlopen(f"{info['gcp']}/compute/v1/projects/demo-project/global/firewalls") as r:
        rules = sorted(f["name"] for f in json.loads(r.read()).get("items", []))
    return clusters, rules


@pytest.mark.slow
def test_ctrl_c_cancels_the_run_then_rerun_converges_and_down_removes_everything(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    root = tmp_path / "sandbox"
    env = {**cli_env, "MESHWRIGHT_SANDBOX_STATE": str(root)}
    spec = tmp_path / "mesh.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "clusters": SPEC["clusters"][:2]}))
    daemon.start(root, latency="create=3,delete=0.3")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "meshwright", "up", str(spec)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while len(world(root)[0]) < 2:
            assert time.monotonic() < deadline, "the clusters never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 130, stderr[-2000:]
        assert "cancelling the run" in stderr
        assert "error: up-mesh: the run was cancelled" in stderr
        run_url = next(line.split(": ", 1)[1] for line in stderr.splitlines() if "/runs/flow-run/" in line)
        api = json.loads((Path(env["MESHWRIGHT_PREFECT_HOME"]) / "server.json").read_text())["url"]
        with urllib.request.urlopen(f"{api}/flow_runs/{run_url.rsplit('/', 1)[1]}") as r:
            assert json.loads(r.read())["state"]["type"] in ("CANCELLING", "CANCELLED")

        up = cli("up", "--json", str(spec), env=env)
        assert up.returncode == 0, up.stderr[-2000:]
        report = json.loads(up.stdout)
        assert [c["name"] for c in report["provision"]["clusters"]] == ["central", "west"]
        assert all(s["finished"] >= s["started"] for s in report["steps"])
        assert {r["name"] for r in report["releases"]} == {"istio-base", "istiod-1-30-3"}
        assert world(root) == (["central:RUNNING", "west:RUNNING"], ["meshwright-clim-pods"])
        token = (root / "operator-token").read_text().strip()
        assert token not in up.stdout + up.stderr

        status = cli("status", str(spec), env=env)
        assert "firewall meshwright-clim-pods" in status.stdout

        down = cli("down", str(spec), env=env)
        assert down.returncode == 0, down.stderr[-2000:]
        assert "deleted 2 cluster(s)" in down.stdout
        assert world(root) == ([], [])
    finally:
        daemon.reset(root)


def test_up_with_an_invalid_spec_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    env = {
        **os.environ,
        "MESHWRIGHT_SANDBOX_STATE": str(root),
        "MESHWRIGHT_PREFECT_HOME": str(tmp_path / "p"),
    }
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "clusters": [{"name": "central", "location": "mars"}]}))
    result = cli("up", str(spec), env=env, timeout=60)
    assert result.returncode == 2
    assert "clusters[0].location: neither a GCP zone" in result.stderr
    assert not root.exists()


def test_up_failing_preflight_is_one_clear_line_with_what_to_do(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    root = tmp_path / "sandbox"
    env = cli_env
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


@pytest.mark.slow
def test_two_ups_of_one_mesh_started_together_do_not_collide(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """One run per mesh: the second `up` names the run in flight and follows it; --wait queues."""
    root = tmp_path / "sandbox"
    env = {**cli_env, "MESHWRIGHT_SANDBOX_STATE": str(root)}
    spec = tmp_path / "mesh.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "name": "twin", "clusters": SPEC["clusters"][:1]}))
    daemon.start(root, latency="create=3,delete=0.2")
    try:
        first = subprocess.Popen(
            [sys.executable, "-m", "meshwright", "up", str(spec)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert first.stderr is not None
        while "flow run" not in first.stderr.readline():  # the first run exists
            pass
        queued = subprocess.Popen(
            [sys.executable, "-m", "meshwright", "up", str(spec), "--wait"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        second = cli("up", str(spec), env=env)
        assert first.wait(timeout=180) == 0
        assert second.returncode == 0, second.stderr[-2000:]
        assert "mesh twin is held by flow run" in second.stderr
        _, queued_err = queued.communicate(timeout=180)
        assert queued.returncode == 0, queued_err[-2000:]
        assert "is held by" not in queued_err  # its own run, which waited for the mesh's slot
        assert world(root) == (["central:RUNNING"], ["meshwright-twin-pods"])
        assert cli("down", str(spec), env=env).returncode == 0
    finally:
        daemon.reset(root)


def test_approve_with_no_run_waiting_for_an_answer_says_so_and_exits_1(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    spec = tmp_path / "mesh.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "name": "unpaused"}))
    result = cli("approve", str(spec), "--roll-back", env=cli_env, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: approve: no run of mesh unpaused is paused waiting for an answer"
    )
