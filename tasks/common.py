"""What every task shares: the retry rule, backoff settings, the once-per-run cache and timing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import INPUTS, RUN_ID, TASK_SOURCE, CachePolicy
from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff
from pydantic import BaseModel

from meshwright.errors import Unresponsive, is_transient
from meshwright.models import Timing
from meshwright.settings import settings

JITTER = 0.5


def retry_delays(retries: int) -> list[float]:
    """Exponential backoff from `retry_backoff` (2 s), each wait at most `retry_max_delay` (60 s):
    with the default 8 retries, 2+4+8+16+32+60+60+60 s, about four minutes, as long as GKE may keep
    a new cluster RECONCILING or its control plane away during a resize or an upgrade.

    Prefect expands this when a task is defined, so the settings are read when `tasks` is imported.
    """
    delays: list[float] = exponential_backoff(backoff_factor=settings().retry_backoff)(retries)
    return [min(d, settings().retry_max_delay) for d in delays]


UNRESPONSIVE_TRIES = 3  # a hung API server: 3 tries of one read bound each, then the step fails


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what meshwright classed as transient; permanent errors fail the step at once, and
    an endpoint that never answers is given UNRESPONSIVE_TRIES tries, not the whole budget."""
    try:
        state.result()
    except Unresponsive:
        return int(getattr(task_run, "run_count", 0) or 0) < UNRESPONSIVE_TRIES
    except Exception as error:
        return is_transient(error)
    return False


RETRYING: dict[str, Any] = {
    "retries": settings().retries,
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


def _without_timing(value: Any) -> Any:
    """A result model as an input, less its timing: a rerun wait gives the same cluster new times."""
    if isinstance(value, BaseModel) and "timing" in type(value).model_fields:
        return value.model_dump(mode="json", exclude={"timing"})
    return value


@dataclass
class StableInputs(CachePolicy):
    """INPUTS, where a model's `timing` does not count (it changes whenever a wait runs again).

    Not a subclass of Inputs: a compound policy replaces every Inputs it holds by a plain one.
    """

    def compute_key(
        self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        stable = {key: _without_timing(value) for key, value in (inputs or {}).items()}
        return INPUTS.compute_key(task_ctx, stable, flow_parameters, **kwargs)


# A step that changes the world once per flow run: a retry of the same run (the UI's Retry,
# `prefect flow-run retry`) takes its persisted result instead of doing it again, while a new run
# looks at the world afresh (RUN_ID differs). Only for results that hold no secret.
ONCE_PER_RUN: dict[str, Any] = {
    "persist_result": True,
    "cache_policy": StableInputs() + TASK_SOURCE + RUN_ID,
}
