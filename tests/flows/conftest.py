"""One Prefect test harness for the session; result storage in a folder the tests can search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, PREFECT_LOCAL_STORAGE_PATH, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from tests.tasks.conftest import sandbox, target

__all__ = ["sandbox", "target"]


@pytest.fixture(scope="session")
def prefect_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prefect-storage")


@pytest.fixture(scope="session", autouse=True)
def harness(prefect_storage: Path) -> Iterator[None]:
    updates = {PREFECT_LOCAL_STORAGE_PATH: prefect_storage, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    with temporary_settings(updates=updates), prefect_test_harness(server_startup_timeout=60):
        yield
