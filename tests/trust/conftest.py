"""Trust tasks run with `task.fn()` against the in-process sandbox (`sandbox`, `target`: tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def outside_a_run(no_run_logger: None) -> None:
    """Every test here calls task bodies outside a flow run."""
