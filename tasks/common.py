"""What every task shares: the retry rule, backoff settings and timing."""

from __future__ import annotations

import time
from typing import Any

from prefect.tasks import exponential_backoff

from meshwright.errors import is_transient
from meshwright.models import Timing
from meshwright.settings import settings

RETRIES = 5
JITTER = 0.5


def retry_delays(retries: int) -> list[float]:
    """Exponential backoff; the factor (seconds) is the `retry_backoff` setting, default 2.

    Prefect expands this when a task is defined, so the setting is read when `tasks` is imported.
    """
    delays: list[float] = exponential_backoff(backoff_factor=settings().retry_backoff)(retries)
    return delays


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what meshwright classed as transient; permanent errors fail the step at once."""
    try:
        state.result()
    except Exception as error:
        return is_transient(error)
    return False


RETRYING: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": retry_delays,
    "retry_jitter_factor": JITTER,
    "retry_condition_fn": retry_if_transient,
}


class Clock:
    """Times one step of one cluster."""

    def __init__(self, step: str, cluster: str | None = None) -> None:
        self.step, self.cluster, self.started = step, cluster, time.time()

    def done(self) -> Timing:
        return Timing(step=self.step, cluster=self.cluster, started=self.started, finished=time.time())
