"""Settings for the whole suite, applied before any project module is imported, and the fixtures
that tests of several folders request. Helpers that are not fixtures are in tests/support.py."""

from __future__ import annotations

import os
import tempfile

# Retries keep their count and shape, without real-world waits.
os.environ.setdefault("MESHWRIGHT_RETRY_BACKOFF", "0.05")
os.environ.setdefault("MESHWRIGHT_RETRY_MAX_DELAY", "0.2")
# Flow tests hand their flows spec files written under pytest's tmp_path, as a runner whose
# MESHWRIGHT_SPEC_ROOTS names their directory would read them (tests/spec pins the confinement).
os.environ.setdefault("MESHWRIGHT_SPEC_ROOTS", tempfile.gettempdir())
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# The harness's server evaluates proactive automations every second, not every 5 s (the crash
# automation's test waits for one evaluation).
os.environ.setdefault("PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY", "PT1S")

# The imports come after the settings above: Prefect reads its settings when it is imported.
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.logging import disable_run_logger
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, PREFECT_LOCAL_STORAGE_PATH, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.helm import resolve_charts
from meshwright.models import ChartRef
from meshwright.sandbox.contract import BUNDLED_CHARTS
from meshwright.sandbox.world import World
from meshwright.spec import Target
from tests.support import FAST, meshwright_home_at, register

# -- Prefect ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def prefect_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the flow runs keep their results: a folder the tests can search for what leaked."""
    return tmp_path_factory.mktemp("prefect-storage")


@pytest.fixture(scope="session")
def harness(prefect_storage: Path) -> Iterator[None]:
    """One Prefect test harness (an API server on a temporary database) for the whole session.

    Requested by the tests that run flows, never autouse: a start costs seconds, which unit tests
    must not pay. Once started it stays up, and its settings in force, until the session ends."""
    updates = {PREFECT_LOCAL_STORAGE_PATH: prefect_storage, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    with temporary_settings(updates=updates), prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def no_run_logger() -> Iterator[None]:
    """`task.fn()` outside a run: get_run_logger() needs this (autouse where tests call task bodies)."""
    with disable_run_logger():
        yield


# -- the sandbox, as the tasks and flows reach it ----------------------------------------------


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


@pytest.fixture(scope="module")
def shared_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshwrightTarget]:
    """One sandbox for a module whose tests only read what a fixture installed once."""
    root = tmp_path_factory.mktemp("shared")
    world = World(root / "sandbox", latency=FAST).start()
    register(world)
    clients.reset_cache()
    try:
        with meshwright_home_at(root / ".meshwright"):
            yield MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(root / "sandbox"))
    finally:
        world.stop()
        clients.reset_cache()


@pytest.fixture(scope="session")
def bundled() -> list[ChartRef]:
    """The sandbox's bundled stand-in charts (base, istiod, gateway) at Istio 1.30.3."""
    return resolve_charts(str(BUNDLED_CHARTS), "1.30.3", hint="")


# -- meshwright's own files ---------------------------------------------------------------------


@pytest.fixture
def meshwright_home(tmp_path: Path) -> Iterator[Path]:
    """meshwright's `.meshwright` folder (root CA files, kubeconfigs) in the test's own directory."""
    with meshwright_home_at(tmp_path / ".meshwright") as home:
        yield home
