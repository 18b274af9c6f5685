"""Tasks run with `task.fn()` against an in-process sandbox, reached through a MeshwrightTarget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.logging import disable_run_logger

from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.sandbox.world import World
from meshwright.spec import MeshSpec, Target, validate_spec
from tests.sandbox.conftest import FAST, register


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[World]:
    root = tmp_path / "sandbox"
    world = World(root, latency=FAST).start()
    register(world)
    clients.reset_cache()
    yield world
    world.stop()
    clients.reset_cache()


@pytest.fixture
def target(sandbox: World) -> MeshwrightTarget:
    """The in-process sandbox as the flows and tasks are told about it: by its state directory."""
    return MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(sandbox.layout.root))


@pytest.fixture(autouse=True)
def no_run_logger() -> Iterator[None]:
    """`task.fn()` outside a run: get_run_logger() needs this."""
    with disable_run_logger():
        yield


def mesh(**overrides: object) -> MeshSpec:
    data: dict[str, object] = {
        "name": "m1",
        "project": "demo-project",
        "ttl": "2h",
        "clusters": [
            {
                "name": "central",
                "location": "us-central1-a",
                "nodes": 4,
                "pod_cidr": "10.8.0.0/14",
                "labels": {"team": "mesh"},
            },
            {"name": "west", "location": "us-west1-b", "primary": "central"},
        ],
    }
    data.update(overrides)
    return validate_spec(data)
