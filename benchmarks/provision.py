"""How close `provision_mesh` gets to the critical path: prints figures, asserts nothing.

    .venv/bin/python -m benchmarks.provision [--sizes 3,10,20] [--create 5]

For each size, a private sandbox with a fixed simulated create time runs the real flow (real
google-cloud clients, real Prefect engine on an ephemeral API). Printed per size: the flow's
duration (wall clock around the flow call, and inside the flow body), the critical path (the
longest single create, request to RUNNING), their ratio, the sequential sum (what creating the
clusters one after another would cost) and Prefect's overhead per task run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml

ZONES = ["us-central1-a", "us-west1-b", "us-east1-b", "europe-west4-a", "asia-east1-a"]


def spec_file(directory: Path, n: int) -> str:
    clusters = [
        {"name": f"c{i:02d}", "location": ZONES[i % len(ZONES)], **({"primary": "c00"} if i else {})}
        for i in range(n)
    ]
    path = directory / f"bench-{n}.yaml"
    path.write_text(
        yaml.safe_dump({"name": f"bench{n}", "project": "bench-project", "ttl": "1h", "clusters": clusters})
    )
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="3,10,20")
    parser.add_argument("--create", type=float, default=5.0, help="simulated cluster create time (s)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="meshwright-bench-"))
    os.environ.update(PREFECT_HOME=str(work / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    from meshwright.sandbox import daemon  # after the environment is set

    daemon.start(work / "sandbox", latency=f"create={args.create},delete=0.5,pending=0.2")
    try:
        run(work, [int(s) for s in args.sizes.split(",")], args.create)
    finally:
        daemon.reset(work / "sandbox")


def run(work: Path, sizes: list[int], create: float) -> None:
    from prefect import flow

    from flows.provision import provision_mesh
    from flows.teardown import teardown_mesh
    from meshwright.clients import MeshwrightTarget
    from meshwright.settings import settings
    from meshwright.spec import Target

    sandbox = MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(work / "sandbox"))

    flow(name="warm-up")(lambda: None)()  # start Prefect's ephemeral API outside the measurements
    print(
        f"simulated create time {create:.1f}s; sandbox poll interval 0.1s; API concurrency {settings().api_concurrency}"
    )
    print(
        f"{'clusters':>8} {'flow wall':>10} {'flow body':>10} {'critical':>9} {'ratio':>6} {'sequential':>11} {'overhead/task':>14}"
    )
    for n in sizes:
        path = spec_file(work, n)
        started = time.perf_counter()
        report = provision_mesh(spec=path, kubeconfig=str(work / f"kc-{n}"), connection=sandbox)
        wall = time.perf_counter() - started
        creates = [c.timing.seconds for c in report.clusters]
        critical, sequential = max(creates), sum(creates)
        tasks = 2 * n + 4  # create + wait per cluster, network check, firewall, kubeconfig, report
        print(
            f"{n:>8} {wall:>9.2f}s {report.seconds:>9.2f}s {critical:>8.2f}s {wall / critical:>6.2f} {sequential:>10.1f}s {1000 * (wall - critical) / tasks:>12.0f}ms"
        )
        teardown_mesh(spec=path, wait=True, kubeconfig=str(work / f"kc-{n}"), connection=sandbox)


if __name__ == "__main__":
    main()
