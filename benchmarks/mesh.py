"""How close `up_mesh` gets to the critical path: prints figures, asserts nothing.

    .venv/bin/python -m benchmarks.mesh [--sizes 3,10] [--create 10] [--rollout 2] [--loadbalancer 2]

A private sandbox daemon with fixed simulated latencies runs the real flow (real google-cloud and
kubernetes clients, real pyhelm3 driving the bundled helm, real Prefect engine on an ephemeral API)
for the three-cluster mesh of deployments/sandbox.yaml and for N clusters (one primary, N-1 remotes).

The critical path of the simulated steps: the slowest primary's create (request to RUNNING, as
measured), then istiod's rollout, then its east-west gateway's rollout and load balancer (they run
side by side); a remote adds no simulated step after its primary's gateway address (its istiod is
a Service, its install is not waited for). With Bookinfo (the three-cluster mesh), the ingress
gateway's rollout (its load balancer alongside) and then the apps' rollout follow; the remote
secrets and the verification add no simulated step. Everything else (helm, Prefect, key generation, API
calls) is what the flow adds, about 2 to 3 s on 2 CPUs shared with the sandbox; the ratio
run/critical is the figure of merit (goal <= 1.25); the README has the measured figures.
Also printed: RSA 4096 against RSA 2048 key generation, the root's and an intermediate's cost.

`run` is the flow run as Prefect recorded it (Running to Completed, what the UI and the CLI
report); `wall` is the whole in-process call, which adds the run's creation and, after the run
is Completed, Prefect's engine teardown (it joins its heartbeat thread, which sleeps in one-second
steps: up to 1 s). The ratio is run/critical.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ZONES = ["us-central1-a", "us-west1-b", "us-east1-b", "europe-west4-a", "asia-east1-a"]
DEPLOYMENT = Path(__file__).resolve().parents[1] / "deployments" / "sandbox.yaml"


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


def spec_files(directory: Path, sizes: list[int]) -> list[tuple[str, str]]:
    """(label, path): the sandbox deployment (bundled charts), then N-cluster primary + remotes meshes."""
    data = yaml.safe_load(DEPLOYMENT.read_text())
    data.get("istio", {}).pop("charts", None)  # the bundled charts: no internet needed
    base = directory / "sandbox.yaml"
    base.write_text(yaml.safe_dump(data))
    out = [("sandbox.yaml (3)", str(base))]
    for n in sizes:
        clusters = [
            {"name": f"c{i:02d}", "location": ZONES[i % len(ZONES)], **({"primary": "c00"} if i else {})}
            for i in range(n)
        ]
        path = directory / f"mesh-{n}.yaml"
        path.write_text(
            yaml.safe_dump(
                {"name": f"mesh{n}", "project": "bench-project", "ttl": "1h", "clusters": clusters}
            )
        )
        out.append((f"1 primary + {n - 1} remotes", str(path)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10")
    parser.add_argument("--create", type=float, default=10.0, help="simulated cluster create time (s)")
    parser.add_argument("--rollout", type=float, default=2.0, help="simulated Deployment rollout (s)")
    parser.add_argument("--loadbalancer", type=float, default=2.0, help="simulated load balancer (s)")
    args = parser.parse_args()
    keygen()
    work = Path(tempfile.mkdtemp(prefix="meshwright-bench-mesh-"))
    os.environ.update(
        MESHWRIGHT_SANDBOX_STATE=str(work / "sandbox"),
        PREFECT_HOME=str(work / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    os.chdir(work)  # the root CA's file store and kubeconfigs land here
    from meshwright.sandbox import daemon  # after the environment is set

    latency = (
        f"create={args.create},delete=0.5,pending=0.2,rollout={args.rollout},loadbalancer={args.loadbalancer}"
    )
    daemon.start(work / "sandbox", latency=latency)
    try:
        run(work, spec_files(work, [int(s) for s in args.sizes.split(",")]), args)
    finally:
        daemon.reset(work / "sandbox")


def recorded_seconds(state: Any) -> float:
    """Running to its final state, as Prefect recorded the flow run."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.start_time is not None
    assert run.end_time is not None
    return (run.end_time - run.start_time).total_seconds()


def run(work: Path, specs: list[tuple[str, str]], args: argparse.Namespace) -> None:
    from prefect import flow

    from flows.mesh import MESH_WORKERS, up_mesh

    flow(name="warm-up")(lambda: None)()  # start Prefect's ephemeral API outside the measurements
    print(
        f"simulated: create {args.create:.1f}s (+0.2s pending), rollout {args.rollout:.1f}s, "
        f"load balancer {args.loadbalancer:.1f}s; task pool {MESH_WORKERS} threads; {os.cpu_count()} CPUs"
    )
    print(
        f"{'mesh':>24} {'wall':>8} {'run':>8} {'critical':>9} {'ratio':>6} {'rerun':>7} {'releases':>9}"
        f" {'slowest create':>15}"
    )
    for label, path in specs:
        started = time.perf_counter()
        state = up_mesh(spec=path, kubeconfig=str(work / f"kc-{Path(path).stem}"), return_state=True)
        wall = time.perf_counter() - started
        report, recorded = state.result(), recorded_seconds(state)
        creates = {c.name: c.timing.seconds for c in report.provision.clusters}
        primaries = [r.name for r in report.provision.clusters if r.name in report.gateways] or list(creates)
        slowest = max(creates[p] for p in primaries)
        critical = max(slowest + args.rollout + max(args.rollout, args.loadbalancer), max(creates.values()))
        if report.bookinfo:  # the ingress gateway's rollout (its load balancer alongside), then the apps'
            critical += max(args.rollout, args.loadbalancer) + args.rollout
        again = time.perf_counter()
        up_mesh(spec=path, kubeconfig=str(work / f"kc-{Path(path).stem}"))
        rerun = time.perf_counter() - again
        print(
            f"{label:>24} {wall:>7.2f}s {recorded:>7.2f}s {critical:>8.2f}s {recorded / critical:>6.2f} {rerun:>6.2f}s "
            f"{len(report.releases):>9} {max(creates.values()):>14.2f}s"
        )


if __name__ == "__main__":
    main()
