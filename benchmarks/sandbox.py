"""Sandbox throughput and memory: prints figures, asserts nothing.

    .venv/bin/python -m benchmarks.sandbox [--clusters 20] [--objects 300] [--requests 500]

Starts a private sandbox daemon (its own state directory), then measures with the real clients:
GKE cluster get and Compute firewall get per second, Kubernetes create+get and filtered list per
second against one cluster, 200 clients connecting at once (latency quantiles), and the daemon's
resident memory with N clusters holding M objects.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import http.client
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import kubernetes.client
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, container_v1

from meshwright.sandbox import daemon, store
from meshwright.sandbox.kube.fleet import operator_token
from meshwright.sandbox.settings import Layout

PROJECT = "bench-project"


def rate(n: int, fn: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - started)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_running(
    gke: container_v1.ClusterManagerClient, parent: str, names: list[str]
) -> list[container_v1.Cluster]:
    while True:
        clusters = [gke.get_cluster(name=f"{parent}/clusters/{n}") for n in names]
        if all(c.status == container_v1.Cluster.Status.RUNNING for c in clusters):
            return clusters
        time.sleep(0.1)


def kube(root: Path, cluster: container_v1.Cluster) -> kubernetes.client.CoreV1Api:
    config = kubernetes.client.Configuration()
    config.host = f"https://{cluster.endpoint}"
    ca = root / f"{cluster.name}.crt"
    ca.write_bytes(base64.b64decode(cluster.master_auth.cluster_ca_certificate))
    config.ssl_ca_cert = str(ca)
    config.api_key["authorization"] = f"Bearer {operator_token(Layout(root))}"
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(config))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--objects", type=int, default=300)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="meshwright-bench-")) / "state"
    info = daemon.start(root, latency="create=0.2,delete=0.1,pending=0.05")
    pid = int(store.read_json(Layout(root).daemon)["pid"])
    try:
        measure(root, info["gcp"], pid, args)
    finally:
        daemon.reset(root)


def measure(root: Path, endpoint: str, pid: int, args: argparse.Namespace) -> None:
    opts = ClientOptions(api_endpoint=endpoint)
    gke = container_v1.ClusterManagerClient(
        credentials=AnonymousCredentials(), transport="rest", client_options=opts
    )
    fw = compute_v1.FirewallsClient(credentials=AnonymousCredentials(), transport="rest", client_options=opts)
    parent = f"projects/{PROJECT}/locations/us-central1-a"
    print(f"daemon pid {pid}, idle RSS {rss_mib(pid):.0f} MiB")
    names = [f"c{i:02d}" for i in range(args.clusters)]
    for name in names:
        gke.create_cluster(parent=parent, cluster=container_v1.Cluster(name=name, initial_node_count=1))
    clusters = wait_running(gke, parent, names)
    rule = compute_v1.Firewall(
        name="bench",
        network="global/networks/default",
        source_ranges=["10.0.0.0/8"],
        allowed=[compute_v1.Allowed(I_p_protocol="all")],
    )
    fw.insert(project=PROJECT, firewall_resource=rule).result()
    gets = rate(args.requests, lambda i: gke.get_cluster(name=f"{parent}/clusters/c00"))
    print(f"GKE get_cluster:          {gets:6.0f} req/s   (google-cloud-container, REST, sequential)")
    fw_gets = rate(args.requests, lambda i: fw.get(project=PROJECT, firewall="bench"))
    print(f"Compute firewalls.get:    {fw_gets:6.0f} req/s   (google-cloud-compute, REST, sequential)")
    print(f"daemon RSS with {args.clusters} empty clusters: {rss_mib(pid):.0f} MiB")
    p50, p99, answered = burst(endpoint, 200)
    print(
        f"200 connections at once:  p50 {p50 * 1000:4.0f} ms, p99 {p99 * 1000:4.0f} ms, {answered}/200 answered"
    )
    core = kube(root, clusters[0])
    core.create_namespace({"metadata": {"name": "bench"}})

    def create_get(i: int) -> None:
        core.create_namespaced_config_map(
            "bench", {"metadata": {"name": f"cm{i}", "labels": {"n": str(i % 10)}}}
        )
        core.read_namespaced_config_map(f"cm{i}", "bench")

    print(
        f"Kubernetes create+get:    {rate(args.requests, create_get):6.0f} pairs/s (python client, sequential)"
    )
    listed = rate(200, lambda i: core.list_namespaced_config_map("bench", label_selector="n in (1,2)"))
    print(f"Kubernetes filtered list: {listed:6.0f} lists/s (label selector, {args.requests} objects)")
    fill(root, clusters, args.objects)
    print(f"daemon RSS with {args.clusters} clusters x {args.objects} objects: {rss_mib(pid):.0f} MiB")


def burst(endpoint: str, n: int) -> tuple[float, float, int]:
    """n clients connect at the same moment and each asks once: latency quantiles, answers."""
    port = int(endpoint.rsplit(":", 1)[1])
    go = threading.Barrier(n)

    def one(_: int) -> float | None:
        go.wait()
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/_sandbox/health")
            conn.getresponse().read()
        except OSError:
            return None
        finally:
            conn.close()
        return time.perf_counter() - started

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        times = sorted(t for t in pool.map(one, range(n)) if t is not None)
    if not times:
        return float("nan"), float("nan"), 0
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))], len(times)


def fill(root: Path, clusters: list[container_v1.Cluster], objects: int) -> None:
    def one(cluster: container_v1.Cluster) -> None:
        api = kube(root, cluster)
        api.create_namespace({"metadata": {"name": "fill"}})
        for i in range(objects):
            api.create_namespaced_secret(
                "fill",
                {"metadata": {"name": f"s{i}", "labels": {"i": str(i)}}, "stringData": {"k": "v" * 64}},
            )

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, clusters))
    took = time.perf_counter() - started
    total = len(clusters) * objects
    print(f"filled {total} objects in {took:.1f}s ({total / took:.0f} creates/s, 4 client threads)")


if __name__ == "__main__":
    main()
