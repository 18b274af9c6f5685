"""Settings for the whole suite, applied before any project module is imported, and the one Prefect
test harness of the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Retries keep their count and shape, without real-world waits.
os.environ.setdefault("MESHWRIGHT_RETRY_BACKOFF", "0.05")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def prefect_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prefect-storage")


@pytest.fixture(scope="session")
def harness(prefect_storage: Path) -> Iterator[None]:
    """One temporary Prefect server for every module that asks for it.

    Defined once, here: a session fixture imported into two test modules is two fixtures, and a
    second harness started inside the first leaves Prefect's events worker talking to the first
    server, so the second records no task runs.
    """
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_LOCAL_STORAGE_PATH,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    updates = {PREFECT_LOCAL_STORAGE_PATH: prefect_storage, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    with temporary_settings(updates=updates), prefect_test_harness(server_startup_timeout=60):
        yield
