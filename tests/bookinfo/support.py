"""A sandbox with a whole mesh and Bookinfo, built by the real tasks, for the end-to-end traffic tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prefect.logging import disable_run_logger

from benchmarks.verify import bring_up_bookinfo
from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.findings import findings
from meshwright.models import ClusterAccess
from meshwright.sandbox.world import World
from meshwright.spec import MeshSpec, Target
from meshwright.traffic import TrafficReport, check_traffic
from tasks.verify import ingress_address, observe_bookinfo, read_firewalls, send_traffic
from tests.support import FAST, meshwright_home_at, register, wait_for

Built = tuple[World, MeshwrightTarget, MeshSpec, dict[str, ClusterAccess]]


def running_mesh(root: Path, mesh: MeshSpec) -> Iterator[Built]:
    """One sandbox at a time: it owns the loopback gateway addresses while it runs."""
    world = World(root / "sandbox", latency=FAST).start()
    register(world)
    clients.reset_cache()
    target = MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(root / "sandbox"))
    try:
        with meshwright_home_at(root / ".meshwright"), disable_run_logger():  # the root CA's file store
            yield world, target, mesh, bring_up_bookinfo(mesh, target)
    finally:
        world.stop()
        clients.reset_cache()


def routing_caught_up(world: World) -> None:
    """Wait until the data plane routes by a snapshot of the world taken after this call.

    The proxies' view is a snapshot kept for up to SNAPSHOT_SECONDS (istiod's pushes are not
    instant either): a change made just before may be missing from the current snapshot, never
    from the next one, which is a new object."""
    current = world.dataplane.snapshot()
    wait_for(lambda: world.dataplane.snapshot() is not current, what="a new routing snapshot", timeout=5.0)


def traffic(built: Built, requests: int = 30) -> TrafficReport:
    """What `verify` sees now (once the data plane's routing snapshot has caught up)."""
    world, target, mesh, clusters = built
    routing_caught_up(world)
    with disable_run_logger():
        address = ingress_address.fn(mesh, clusters, target=target)
        assert address is not None
        replies = send_traffic.fn(address, requests=requests, warmup=2.0)
        states = {n: observe_bookinfo.fn(mesh, a, target=target) for n, a in clusters.items()}
        found = findings(mesh, states, read_firewalls.fn(mesh, target=target))
    return check_traffic(mesh, address, replies, found)
