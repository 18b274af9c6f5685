"""How long the traffic check takes on the sandbox: prints figures, asserts nothing.

    .venv/bin/python -m benchmarks.verify [--requests 30] [--rounds 3] [--spec deployments/sandbox.yaml]

An in-process sandbox (fast simulated latencies) gets the spec's mesh the way `up` builds it, with
the real tasks: clusters, firewall rule, shared root and cacerts, the bundled Istio charts through
pyhelm3 and helm, remote secrets, Bookinfo. Then `send_traffic` (plain HTTP to the ingress
gateway's loopback address, as curl would) is timed for `--requests` GETs of the reviews API and as
many of the product page, and the verdict of `check_traffic` is printed. The issue's goal: 30
requests in under 2 s. `bring_up_bookinfo` is shared with the end-to-end tests.
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

DEPLOYMENT = Path(__file__).resolve().parents[1] / "deployments" / "sandbox.yaml"


def bring_up_bookinfo(spec: Any, target: Any) -> dict[str, Any]:
    """The spec's mesh and Bookinfo, in `up`'s order, with the tasks' bodies; returns ClusterAccess by name."""
    from meshwright.helm import resolve_charts
    from meshwright.istio_values import needs_eastwest
    from meshwright.remote_secrets import pairs
    from meshwright.sandbox.contract import BUNDLED_CHARTS
    from tasks.bookinfo import deploy_bookinfo
    from tasks.clusters import create_cluster, wait_cluster
    from tasks.istio import expose_on_gateway, gateway_address, install_release, prepare_namespace
    from tasks.network import ensure_firewall
    from tasks.remote_secrets import exchange_remote_secret
    from tasks.trust import ensure_cacerts, ensure_root_ca

    charts = resolve_charts(str(BUNDLED_CHARTS), spec.istio.version, hint="")
    created = {c.name: create_cluster.fn(spec, c.name, target=target, expires=None) for c in spec.clusters}
    clusters = {n: wait_cluster.fn(spec, c, target=target) for n, c in created.items()}
    ensure_firewall.fn(spec, [a.pod_cidr for a in clusters.values()], target=target, expires=None)
    root = ensure_root_ca.fn(spec)
    for access in clusters.values():
        prepare_namespace.fn(spec, access, target=target)
        ensure_cacerts.fn(spec, access, root, target=target)
    addresses = {}
    for c in spec.primaries:
        for release in (
            "istio-base",
            "istiod",
            *(["istio-eastwestgateway"] if needs_eastwest(spec, c) else []),
        ):
            install_release.fn(spec, clusters[c.name], release, charts, target=target)
        if needs_eastwest(spec, c):
            addresses[c.name] = gateway_address.fn(clusters[c.name], target=target)
            expose_on_gateway.fn(spec, clusters[c.name], target=target)
    for c in spec.remotes:
        address = addresses[c.primary]
        install_release.fn(spec, clusters[c.name], "istio-base", charts, target=target)
        install_release.fn(
            spec, clusters[c.name], "istiod", charts, target=target, remote_pilot_address=address
        )
    for source, primary in pairs(spec):
        exchange_remote_secret.fn(clusters[source], clusters[primary], target=target)
    for c in spec.remotes:
        if needs_eastwest(spec, c):
            install_release.fn(spec, clusters[c.name], "istio-eastwestgateway", charts, target=target)
    for access in clusters.values():
        deploy_bookinfo.fn(spec, access, charts, target=target)
    return clusters


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spec", default=str(DEPLOYMENT))
    args = parser.parse_args()

    from prefect.logging import disable_run_logger

    from meshwright import clients
    from meshwright.clients import MeshwrightTarget
    from meshwright.sandbox import store
    from meshwright.sandbox.settings import Latency, Layout
    from meshwright.sandbox.world import World
    from meshwright.spec import Target, validate_spec
    from meshwright.traffic import check_traffic
    from tasks.verify import ingress_address, send_traffic

    data = yaml.safe_load(Path(args.spec).resolve().read_text())
    data.get("istio", {}).pop("charts", None)  # the bundled charts: no internet needed
    spec = validate_spec(data)
    root = Path(tempfile.mkdtemp(prefix="meshwright-bench-verify-"))
    os.chdir(root)  # the root CA's file store lands here, not in the working tree
    fast = Latency(create=0.3, delete=0.2, pending=0.05, firewall=0.0, rollout=0.1, loadbalancer=0.1)
    world = World(root / "sandbox", latency=fast).start()
    store.write_json(
        Layout(root / "sandbox").daemon,
        {"port": world.server.port if world.server else 0, "gcp": world.base_url()},
    )
    clients.reset_cache()
    target = MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(root / "sandbox"))
    try:
        with disable_run_logger():
            started = time.perf_counter()
            clusters = bring_up_bookinfo(spec, target)
            print(
                f"mesh {spec.name} with Bookinfo up in {time.perf_counter() - started:.1f}s (fast latencies)"
            )
            address = ingress_address.fn(spec, clusters, target=target)
            print(f"ingress gateway address: {address}")
            if not address:
                return
            times = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                replies = send_traffic.fn(address, requests=args.requests)
                times.append(time.perf_counter() - started)
            report = check_traffic(spec, address, replies, [])
        print(
            f"{args.requests} reviews + {args.requests} product pages: median {statistics.median(times):.2f}s, "
            f"max {max(times):.2f}s over {args.rounds} rounds (goal for 30: < 2 s)"
        )
        print(f"served: {report.served}")
        print("verdict: " + ("healthy" if report.ok else "; ".join(report.problems)))
    finally:
        world.stop()
        clients.reset_cache()


if __name__ == "__main__":
    main()
