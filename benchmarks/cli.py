"""What the CLI costs around a flow run, and what a retry of a failed run costs: prints figures,
asserts nothing.

    .venv/bin/python -m benchmarks.cli [--runs 5] [--create 2]

In a private sandbox and a private local Prefect server (both started here, stopped at the end):

1. CLI overhead: `meshwright up` of a one-cluster mesh, run as a user runs it (a new process each
   time), after one warm-up run. Overhead = the command's wall time minus the flow run's own
   duration (start to end, as Prefect recorded it).
2. Retry: a full `up` of the mission (deployments/sandbox.yaml: a primary, two remotes, Bookinfo);
   then the same mesh in another project with a fault that fails its last step, the verification,
   cleared, and the failed run retried as the UI's Retry does (same run, state AwaitingRetry).
   Compared: the retry's duration with the full run's (each Running to final state, as Prefect
   recorded it). The retry redoes the waits (a GKE read per cluster, a watch per rollout) and the
   whole verification, traffic included; everything that changed the world comes from the first
   attempt's persisted results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from meshwright.cli import server
from meshwright.sandbox import daemon

DEPLOYMENT = Path(__file__).resolve().parents[1] / "deployments" / "sandbox.yaml"
CLUSTERS = [{"name": "central", "location": "us-central1-a"}]  # one cluster, Istio on it
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
VERIFY_FAULT = {  # istiod's clusterz, read through the API server's service proxy: only the verification reads it
    "api": "kube",
    "method": "GET",
    "path": "/proxy/",
    "status": 503,
    "message": "no endpoints available (benchmark fault)",
}


def spec(directory: Path, name: str, clusters: list[dict[str, Any]]) -> Path:
    """A mesh whose clusters carry its name (GKE names are per project and location)."""
    clusters = [
        {
            **c,
            "name": f"{name}-{c['name']}",
            **({"primary": f"{name}-{c['primary']}"} if "primary" in c else {}),
        }
        for c in clusters
    ]
    path = directory / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump({"name": name, "project": "bench-project", "ttl": "1h", "clusters": clusters})
    )
    return path


def mission(directory: Path, name: str) -> Path:
    """The sandbox deployment's mesh, in a project of its own (GKE names are per project)."""
    data = yaml.safe_load(DEPLOYMENT.read_text())
    data.get("istio", {}).pop("charts", None)  # the bundled charts: no internet needed
    data.update(name=name, project=f"bench-{name}", ttl="1h")
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cli(env: dict[str, str], *args: str) -> tuple[float, str, int]:
    """Wall seconds, the flow run id the CLI printed, and its exit code."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "meshwright", *args], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode:
        errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
        print(f"  ({args[0]} {Path(args[1]).name}: exit {done.returncode}: {errors[:1]})")
    run_id = next(
        (line.rsplit("/", 1)[1] for line in done.stderr.splitlines() if "/runs/flow-run/" in line), ""
    )
    return wall, run_id, done.returncode


def up(env: dict[str, str], path: Path) -> tuple[float, str, int]:
    """`meshwright up SPEC`, its kubeconfig beside the spec (not in the project's .meshwright)."""
    return cli(env, "up", str(path), "--kubeconfig", str(path.with_suffix(".kubeconfig")))


def run_seconds(api: str, run_id: str) -> float:
    run = httpx.get(f"{api}/flow_runs/{run_id}").json()
    return float(run["total_run_time"])


def overhead(env: dict[str, str], api: str, path: Path, runs: int) -> None:
    up(env, path)  # warm-up: the runner's forkserver imports the flows once
    walls, flows = [], []
    for _ in range(runs):
        wall, run_id, code = up(env, path)
        assert code == 0, "meshwright up failed"
        walls.append(wall)
        flows.append(run_seconds(api, run_id))
    extra = [w - f for w, f in zip(walls, flows, strict=True)]
    print(f"warm `meshwright up`, 1 sandbox cluster, {runs} runs (min / median / max, seconds):")
    print(f"  command wall time   {min(walls):5.2f} / {statistics.median(walls):5.2f} / {max(walls):5.2f}")
    print(f"  flow run itself     {min(flows):5.2f} / {statistics.median(flows):5.2f} / {max(flows):5.2f}")
    print(
        f"  outside the flow    {min(extra):5.2f} / {statistics.median(extra):5.2f} / {max(extra):5.2f}  (goal <= 1.5)"
    )


def faults(gcp: str, rules: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{gcp}/_sandbox/faults", data=json.dumps(rules).encode(), method="PUT",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    urllib.request.urlopen(request).close()


def retry(env: dict[str, str], api: str, gcp: str, directory: Path) -> None:
    _, full_id, code = up(env, mission(directory, "full"))
    assert code == 0, "the full run failed"
    full = run_seconds(api, full_id)
    faults(gcp, [VERIFY_FAULT])
    _, failed_id, code = up(env, mission(directory, "again"))
    assert code != 0, "the fault did not fail the run"
    failed = run_seconds(api, failed_id)
    faults(gcp, [])
    again = retry_run(api, failed_id)
    print(
        f"retry of an `up` that failed at verification (the mission: 3 sandbox clusters and Bookinfo, "
        f"{env['BENCH_CREATE']}s per create):"
    )
    print(
        f"  full run {full:5.2f}s; failed attempt {failed:5.2f}s; retry {again:5.2f}s = {again / full:.0%} of the full run (goal <= 10%)"
    )


def retry_run(api: str, run_id: str) -> float:
    """Retry as the UI does: the same run back to Scheduled/AwaitingRetry; the runner reruns it.
    Returns the retry's own Running to Completed, as Prefect recorded the states."""
    state = {"type": "SCHEDULED", "name": "AwaitingRetry", "message": "retry (benchmark)"}
    httpx.post(f"{api}/flow_runs/{run_id}/set_state", json={"state": state, "force": True}).raise_for_status()
    run = httpx.get(f"{api}/flow_runs/{run_id}").json()
    while run["state"]["name"] == "AwaitingRetry" or run["state"]["type"] not in FINAL:
        time.sleep(0.05)
        run = httpx.get(f"{api}/flow_runs/{run_id}").json()
    assert run["state"]["type"] == "COMPLETED", run["state"]
    states = httpx.get(f"{api}/flow_run_states/", params={"flow_run_id": run_id}).json()
    began = max(moment(s["timestamp"]) for s in states if s["type"] == "RUNNING")
    return moment(run["state"]["timestamp"]) - began


def moment(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--create", type=float, default=2.0, help="simulated cluster create time (s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meshwright-bench-cli-") as tmp:
        directory = Path(tmp)
        home, state = directory / "prefect", directory / "sandbox"
        env = {
            **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
            server.HOME_ENV: str(home),
            "MESHWRIGHT_SANDBOX_STATE": str(state),
            "BENCH_CREATE": str(args.create),
        }
        info = daemon.start(state, latency=f"create={args.create},delete=0.2")
        started = time.perf_counter()
        os.environ[server.HOME_ENV] = str(home)
        api = server.start(home)
        print(f"local Prefect server cold start: {time.perf_counter() - started:.1f}s ({api.ui})")
        try:
            overhead(env, api.url, spec(directory, "one", CLUSTERS), args.runs)
            retry(env, api.url, info["gcp"], directory)
        finally:
            server.stop(home)
            daemon.stop(state)


if __name__ == "__main__":
    main()
