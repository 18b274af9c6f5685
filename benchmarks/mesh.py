"""How close `up_mesh` gets to the critical path, and how a mesh build scales: prints figures,
asserts nothing.

    .venv/bin/python -m benchmarks.mesh [--sizes 3,10] [--topology primary-remote|multi-primary|multi-network]
        [--json] [--create 10] [--rollout 2] [--loadbalancer 2] [--keygen]

A private sandbox daemon with fixed simulated latencies runs the real flow (real google-cloud and
kubernetes clients, real pyhelm3 driving the bundled helm, real Prefect engine on an ephemeral API)
for N-cluster meshes of one topology, each size in a GCP project of its own. Per size it prints the
clusters, the remote-secret pairs, the task runs of the flow run, the run as Prefect recorded it
(Running to Completed) against the critical path (ratio), a rerun, a `verify_mesh`, the sandbox
daemon's peak memory and threads, and this process's peak memory; `--json` prints one JSON object
per line and size instead.

The critical path of the simulated steps: a create (the simulated create and PENDING; the time the
flow takes to see it RUNNING is the flow's), then istiod's rollout, then, where the topology has
them, an east-west gateway's rollout and load balancer (they run side by side); a remote adds no
simulated step after its primary's gateway address. The remote
secrets and the verification add no simulated step. Everything else (helm, Prefect, key
generation, API calls) is what the flow adds; the ratio run/critical is the figure of merit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ZONES = ["us-central1-a", "us-west1-b", "us-east1-b", "europe-west4-a", "asia-east1-a"]


def keygen(samples: int = 5) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    for bits in (4096, 2048):
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            rsa.generate_private_key(public_exponent=65537, key_size=bits)
            times.append(time.perf_counter() - started)
        print(
            f"RSA {bits} keygen: median {1000 * statistics.median(times):.0f} ms, "
            f"max {1000 * max(times):.0f} ms over {samples}"
        )


PENDING = 0.2  # a sandbox operation's PENDING before RUNNING: part of every simulated create
TOPOLOGIES = ("primary-remote", "multi-primary", "multi-network")


def spec_files(directory: Path, sizes: list[int], topology: str) -> list[tuple[str, str]]:
    """(label, path): N-cluster meshes of `topology`, each in a project of its own (two sizes in one
    project would share cluster names, which GKE refuses across meshes)."""
    out = []
    for n in sizes:
        clusters = [_cluster(i, topology) for i in range(n)]
        short = "".join(word[0] for word in topology.split("-"))
        spec = {"name": f"{short}{n}", "project": f"bench-{short}-{n:03d}", "ttl": "1h", "clusters": clusters}
        path = directory / f"mesh-{topology}-{n}.yaml"
        path.write_text(yaml.safe_dump(spec))
        out.append((f"{topology} {n}", str(path)))
    return out


def _cluster(i: int, topology: str) -> dict[str, Any]:
    cluster: dict[str, Any] = {"name": f"c{i:02d}", "location": ZONES[i % len(ZONES)]}
    if topology == "primary-remote" and i:
        cluster["primary"] = "c00"
    if topology == "multi-network":  # every cluster a primary on its own network
        cluster["network"] = f"net{i:02d}"
    return cluster


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="3,10")
    parser.add_argument("--topology", choices=TOPOLOGIES, default="primary-remote")
    parser.add_argument("--create", type=float, default=10.0, help="simulated cluster create time (s)")
    parser.add_argument("--rollout", type=float, default=2.0, help="simulated Deployment rollout (s)")
    parser.add_argument("--loadbalancer", type=float, default=2.0, help="simulated load balancer (s)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line and size")
    parser.add_argument("--keygen", action="store_true", help="also time RSA key generation")
    args = parser.parse_args()
    if args.keygen:
        keygen()
    work = Path(tempfile.mkdtemp(prefix="meshwright-bench-mesh-"))
    os.environ.update(
        MESHWRIGHT_SANDBOX_STATE=str(work / "sandbox"),
        MESHWRIGHT_HOME=str(work / "home"),
        MESHWRIGHT_SPEC_ROOTS=str(work),
        PREFECT_HOME=str(work / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    os.chdir(work)  # kubeconfigs land here
    from meshwright.sandbox import daemon  # after the environment is set

    latency = f"create={args.create},delete=0.5,pending={PENDING},rollout={args.rollout},loadbalancer={args.loadbalancer}"
    daemon.start(work / "sandbox", latency=latency)
    try:
        run(work, spec_files(work, [int(s) for s in args.sizes.split(",")], args.topology), args)
    finally:
        daemon.reset(work / "sandbox")


class Peak:
    """The sandbox daemon's peak resident memory (VmHWM) and the most threads seen while sampling."""

    def __init__(self, pid: int) -> None:
        self.pid, self.threads, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _status(self) -> dict[str, str]:
        lines = Path(f"/proc/{self.pid}/status").read_text().splitlines()
        return dict(line.split(":", 1) for line in lines if ":" in line)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.threads = max(self.threads, int(self._status()["Threads"]))

    @property
    def memory_mb(self) -> float:
        return int(self._status()["VmHWM"].split()[0]) / 1024


def recorded(state: Any) -> tuple[float, int]:
    """Running to its final state as Prefect recorded the flow run, and how many task runs it had."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        only = FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
        tasks, page = 0, 200  # the API returns at most 200 at a time
        while batch := client.read_task_runs(flow_run_filter=only, limit=page, offset=tasks):
            tasks += len(batch)
    assert run.start_time is not None
    assert run.end_time is not None
    return (run.end_time - run.start_time).total_seconds(), tasks


def critical_path(report: Any, args: argparse.Namespace) -> float:
    """The simulated steps one after another: a create (request to RUNNING: `create` + PENDING),
    istiod's rollout, then (where the topology has east-west gateways) a gateway's rollout and load
    balancer side by side; with Bookinfo, the ingress gateway and the apps' rollout after. Simulated
    durations only: the time the flow takes to notice that a cluster is RUNNING is the flow's."""
    gateway = max(args.rollout, args.loadbalancer) if report.gateways else 0.0
    critical = args.create + PENDING + args.rollout + gateway
    if report.bookinfo:
        critical += max(args.rollout, args.loadbalancer) + args.rollout
    return critical


def run(work: Path, specs: list[tuple[str, str]], args: argparse.Namespace) -> None:
    from prefect import flow

    from flows.mesh import MESH_WORKERS, up_mesh
    from flows.verify import verify_mesh
    from meshwright.remote_secrets import pairs
    from meshwright.sandbox import daemon
    from meshwright.spec import load_spec

    flow(name="warm-up")(lambda: None)()  # start Prefect's ephemeral API outside the measurements
    if not args.json:
        print(
            f"simulated: create {args.create:.1f}s (+{PENDING}s pending), rollout {args.rollout:.1f}s, load balancer "
            f"{args.loadbalancer:.1f}s; task pool {MESH_WORKERS} threads; {os.cpu_count()} CPUs"
        )
        print(
            f"{'mesh':>22} {'pairs':>6} {'tasks':>6} {'run':>8} {'critical':>9} {'ratio':>6} {'rerun':>7} "
            f"{'verify':>7} {'sandbox MB':>11} {'threads':>8} {'self MB':>8}"
        )
    sandbox_pid = int(daemon.status(work / "sandbox")["pid"])
    for label, path in specs:
        spec = load_spec(path)
        kubeconfig = str(work / f"kc-{Path(path).stem}")
        with Peak(sandbox_pid) as peak:
            state = up_mesh(spec=path, kubeconfig=kubeconfig, return_state=True)
            report = state.result()
            run_s, tasks = recorded(state)
            again = time.perf_counter()
            up_mesh(spec=path, kubeconfig=kubeconfig)
            rerun = time.perf_counter() - again
            checked = time.perf_counter()
            verify_mesh(spec=path)
            verify_s = time.perf_counter() - checked
        critical = critical_path(report, args)
        row = {
            "mesh": label,
            "clusters": len(spec.clusters),
            "topology": args.topology,
            "pairs": len(pairs(spec)),
            "tasks": tasks,
            "run_s": round(run_s, 2),
            "critical_s": round(critical, 2),
            "ratio": round(run_s / critical, 3),
            "rerun_s": round(rerun, 2),
            "verify_s": round(verify_s, 2),
            "sandbox_peak_mb": round(peak.memory_mb, 1),
            "sandbox_peak_threads": peak.threads,
            "self_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        print(
            f"{label:>22} {row['pairs']:>6} {tasks:>6} {run_s:>7.2f}s {critical:>8.2f}s {row['ratio']:>6.2f} "
            f"{rerun:>6.2f}s {verify_s:>6.2f}s {row['sandbox_peak_mb']:>11.1f} {peak.threads:>8} "
            f"{row['self_peak_mb']:>8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
