"""Flow tests run in the session's one Prefect test harness, with result storage in a folder the tests
can search (both fixtures live in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.tasks.conftest import sandbox, target

__all__ = ["sandbox", "target"]


@pytest.fixture(autouse=True)
def _in_harness(harness: None) -> None:
    """Every flow test runs against the session's one Prefect harness (tests/conftest.py)."""
