"""What the CLI costs around a flow run, and what a retry of a failed run costs: prints figures,
asserts nothing.

    .venv/bin/python -m benchmarks.cli [--runs 5] [--create 2]

In a private sandbox and a private local Prefect server (both started here, stopped at the end):

1. CLI overhead: `meshwright up` of a one-cluster mesh, run as a user runs it (a new process each
   time), after one warm-up run. Overhead = the command's wall time minus the flow run's own
   duration (start to end, as Prefect recorded it).
2. Retry: a full `up` of a three-cluster mesh; then the same mesh under another name with a fault
   that fails at its last step, the verification, cleared, and the failed run retried as
   the UI's Retry does (same run, state AwaitingRetry). Compared: the retry's duration with the
   full run's.
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
from pathlib import Path
from typing import Any

import httpx
import yaml

from meshwright import server
from meshwright.sandbox import daemon

CLUSTERS = [
    {"name": "central", "location": "us-central1-a"},
    {"name": "west", "location": "us-west1-b"},
    {"name": "east", "location": "us-east1-b"},
]  # three primaries on one network: Istio on each, no east-west gateway
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


def cli(env: dict[str, str], *args: str) -> tuple[float, str, int]:
    """Wall seconds, the flow run id the CLI printed, and its exit code."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "meshwright", *args], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode:
        errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
        print(f"  ({args[0]} {Path(args[-1]).name}: exit {done.returncode}: {errors[:1]})")
    run_id = next(
        (line.rsplit("/", 1)[1] for line in done.stderr.splitlines() if "/runs/flow-run/" in line), ""
    )
    return wall, run_id, done.returncode


def run_seconds(api: str, run_id: str) -> float:
    run = httpx.get(f"{api}/flow_runs/{run_id}").json()
    return float(run["total_run_time"])


def overhead(env: dict[str, str], api: str, path: Path, runs: int) -> None:
    cli(env, "up", str(path))  # warm-up: the runner's forkserver imports the flows once
    walls, flows = [], []
    for _ in range(runs):
        wall, run_id, code = cli(env, "up", str(path))
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
    _, full_id, code = cli(env, "up", str(spec(directory, "full", CLUSTERS)))
    assert code == 0, "the full run failed"
    full = run_seconds(api, full_id)
    faults(gcp, [VERIFY_FAULT])
    _, failed_id, code = cli(env, "up", str(spec(directory, "again", CLUSTERS)))
    assert code != 0, "the fault did not fail the run"
    failed = run_seconds(api, failed_id)
    faults(gcp, [])
    again = retry_run(api, failed_id)
    print(
        f"retry of an `up` that failed at verification (3 sandbox clusters, {env['BENCH_CREATE']}s per create):"
    )
    print(
        f"  full run {full:5.2f}s; failed attempt {failed:5.2f}s; retry {again:5.2f}s = {again / full:.0%} of the full run (goal <= 10%)"
    )


def retry_run(api: str, run_id: str) -> float:
    """Retry as the UI does: the same run back to Scheduled/AwaitingRetry; the runner reruns it."""
    state = {"type": "SCHEDULED", "name": "AwaitingRetry", "message": "retry (benchmark)"}
    httpx.post(f"{api}/flow_runs/{run_id}/set_state", json={"state": state, "force": True}).raise_for_status()
    while True:
        run = httpx.get(f"{api}/flow_runs/{run_id}").json()
        if run["state"]["type"] == "RUNNING":
            began = time.perf_counter()
            break
        time.sleep(0.05)
    while run["state"]["type"] not in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
        time.sleep(0.05)
        run = httpx.get(f"{api}/flow_runs/{run_id}").json()
    assert run["state"]["type"] == "COMPLETED", run["state"]
    return time.perf_counter() - began


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
            overhead(env, api.url, spec(directory, "one", CLUSTERS[:1]), args.runs)
            retry(env, api.url, info["gcp"], directory)
        finally:
            server.stop(home)
            daemon.stop(state)


if __name__ == "__main__":
    main()
