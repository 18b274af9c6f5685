"""Istio tasks run with `task.fn()` against the in-process sandbox, with real pyhelm3 and helm
(`sandbox`, `target`, `shared_target` and `bundled` are in tests/conftest.py, helpers in support.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def outside_a_run(no_run_logger: None) -> None:
    """The tests here call task bodies outside a flow run (the `up_mesh` runs make their own)."""
