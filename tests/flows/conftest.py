"""Full flow runs on the sandbox: every test here talks to the session's Prefect test harness,
with result storage in a folder the tests can search (`harness`, `prefect_storage`: tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def flow_runs(harness: None) -> None:
    """Every module here runs flows."""
