"""Tasks run with `task.fn()` against an in-process sandbox, reached through a MeshwrightTarget
(`sandbox` and `target` are in tests/conftest.py, `mesh()` in tests/support.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def outside_a_run(no_run_logger: None) -> None:
    """Every test here calls task bodies outside a flow run."""
