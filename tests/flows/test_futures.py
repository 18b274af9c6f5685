"""resolve(): every future resolved, a step that never ran (its input failed) reported, never raised;
the thread pool's futures answer their state without the API."""

from __future__ import annotations

import threading
from unittest.mock import patch

import pytest
from prefect import flow, task
from prefect.client.orchestration import SyncPrefectClient as PrefectClient

from flows._futures import LocalThreadPoolTaskRunner, NotRun, StepsFailed, raise_failures, resolve
from meshwright.errors import PermanentError


@task
def breaks() -> int:
    raise PermanentError("quota exceeded", step="create", cluster="east")


@task
def after(value: int) -> int:
    return value + 1


@flow
def fan_out(skip_failed: bool) -> tuple[dict[str, int], dict[str, BaseException]]:
    create = breaks.submit()
    wait = after.submit(create)  # type: ignore[call-overload]
    _, failed = resolve({"east": create})
    return resolve({"east": wait}, skip=failed if skip_failed else None)


def test_step_whose_input_failed_is_reported_not_run_instead_of_raising() -> None:
    results, failures = fan_out(skip_failed=False)
    assert results == {}
    assert isinstance(failures["east"], NotRun)
    assert str(failures["east"]) == "east: not run: an earlier step failed"


def test_step_whose_input_failed_is_skipped_when_asked() -> None:
    assert fan_out(skip_failed=True) == ({}, {})


def test_raise_failures_names_the_real_failure_before_steps_that_did_not_run() -> None:
    real = PermanentError("quota exceeded", step="create", cluster="east")
    with pytest.raises(PermanentError, match=r"^create \[east\]: quota exceeded$"):
        raise_failures({"a": real, "b": NotRun("not run: an earlier step failed", step="b")})
    with pytest.raises(StepsFailed, match="2 steps failed"):
        raise_failures({"a": real, "c": PermanentError("denied", step="firewall")})
    with pytest.raises(NotRun):
        raise_failures({"b": NotRun("not run: an earlier step failed", step="b")})


@task
def gated(gate: threading.Event) -> int:
    gate.wait(10)
    return 1


@flow(task_runner=LocalThreadPoolTaskRunner(max_workers=4))
def local_states() -> tuple[str, str, int]:
    gate = threading.Event()
    first = gated.submit(gate)
    second = after.submit(first)  # type: ignore[call-overload]
    with patch.object(PrefectClient, "read_task_run", side_effect=AssertionError("asked the API")):
        before = second.state.type.value  # neither done: no API read, Pending
    gate.set()
    second.wait()
    return before, second.state.type.value, second.result()


def test_local_futures_know_their_state_without_asking_the_api() -> None:
    assert local_states() == ("PENDING", "COMPLETED", 2)
