"""Trust tasks run with `task.fn()` against the in-process sandbox (fixtures shared with tests/tasks)."""

from __future__ import annotations

from tests.tasks.conftest import no_run_logger, sandbox, target

__all__ = ["no_run_logger", "sandbox", "target"]
