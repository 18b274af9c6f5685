"""A sandbox with a whole mesh and Bookinfo, built by the real tasks, for the end-to-end traffic tests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from prefect.logging import disable_run_logger

from benchmarks.verify import bring_up_bookinfo
from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.models import ClusterAccess
from meshwright.sandbox.mesh.serve import SNAPSHOT_SECONDS
from meshwright.sandbox.world import World
from meshwright.spec import MeshSpec, Target
from meshwright.traffic import TrafficReport, check_traffic, findings
from tasks.verify import ingress_address, observe_bookinfo, read_firewalls, send_traffic
from tests.sandbox.conftest import FAST, register

Built = tuple[World, MeshwrightTarget, MeshSpec, dict[str, ClusterAccess]]


def running_mesh(root: Path, mesh: MeshSpec) -> Iterator[Built]:
    """One sandbox at a time: it owns the loopback gateway addresses while it runs."""
    world = World(root / "sandbox", latency=FAST).start()
    register(world)
    clients.reset_cache()
    here = Path.cwd()
    os.chdir(root)  # the root CA's file store
    target = MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(root / "sandbox"))
    try:
        with disable_run_logger():
            yield world, target, mesh, bring_up_bookinfo(mesh, target)
    finally:
        os.chdir(here)
        world.stop()
        clients.reset_cache()


def traffic(built: Built, requests: int = 30) -> TrafficReport:
    """What `verify` sees now (after the data plane's routing snapshot has caught up)."""
    _, target, mesh, clusters = built
    time.sleep(SNAPSHOT_SECONDS + 0.1)
    with disable_run_logger():
        address = ingress_address.fn(mesh, clusters, target=target)
        assert address is not None
        replies = send_traffic.fn(address, requests=requests, warmup=2.0)
        states = {n: observe_bookinfo.fn(mesh, a, target=target) for n, a in clusters.items()}
        found = findings(mesh, states, read_firewalls.fn(mesh, target=target))
    return check_traffic(mesh, address, replies, found)
