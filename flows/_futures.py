"""Resolving futures: every one of them, so that any failure fails the flow run (an unresolved
failed future would let the run end Completed), and every failure is reported, not just the first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from prefect.client.schemas.objects import State
from prefect.futures import PrefectConcurrentFuture, PrefectFuture
from prefect.states import Pending
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import Task
from prefect.utilities.annotations import quote
from pydantic import BaseModel

from meshwright.errors import MeshwrightError, PermanentError
from meshwright.settings import settings

T = TypeVar("T")
K = TypeVar("K")


class _LocalFuture(PrefectConcurrentFuture[Any]):
    """A thread-pool future that answers `state` from its own thread: the final state once the
    task is done, Pending before.

    Prefect's future asks the API whenever the state is not final yet, and it does so for every future
    passed as a parameter when the task that takes it is created (to find "parent" task runs). A
    flow that submits its whole DAG at once makes one API read per edge at that moment; in a
    retried `up`, where nothing else is slow, that was a third of a second. None of these
    upstreams is a parent (no task here runs inside another), so Pending is the right answer.
    """

    @property
    def state(self) -> State:
        done = self._wrapped_future
        if self._final_state is None and done.done():
            if done.cancelled() or done.exception() is not None:  # the engine itself failed: ask the API
                return super().state
            outcome = done.result()
            if isinstance(outcome, State):
                self._final_state = outcome
        return self._final_state or Pending()


class LocalThreadPoolTaskRunner(ThreadPoolTaskRunner[Any]):
    """Prefect's thread pool, with futures that know their own state (`_LocalFuture`)."""

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        future = super().submit(*args, **kwargs)
        future.__class__ = _LocalFuture
        return future


def bounded_runner() -> Any:  # Prefect types its runners invariantly; any ThreadPoolTaskRunner fits
    """Prefect's default thread pool is unbounded; 20 clusters must not become 40 polling threads."""
    return LocalThreadPoolTaskRunner(max_workers=settings().max_workers)


class StepsFailed(PermanentError):
    """More than one parallel step failed; the message lists each."""


class NotRun(PermanentError):
    """A step that never ran because one of its inputs failed (that failure is reported on its own)."""


def submit(
    task: Task[..., Any], *args: Any, after: Iterable[PrefectFuture[Any]] = (), **kwargs: Any
) -> PrefectFuture[Any]:
    """`task.submit` with futures among its arguments (Prefect resolves them before the task runs)
    and the steps it comes `after`; Prefect's stubs know neither, so this is the one place that says so.

    Arguments that are models (the spec, the target, the charts) go in `quote`d: Prefect otherwise
    walks every field of every argument, twice per task run, looking for futures to resolve and
    upstream runs to record (visit_collection: 7.5% of the flow's time at 20 clusters, a 50-cluster
    spec being a few thousand fields). A model holds no future, so nothing is lost; the task gets
    the value itself, and its cache key is computed from it as before."""
    return task.submit(*map(_light, args), wait_for=list(after), **{k: _light(v) for k, v in kwargs.items()})


def _light(value: Any) -> Any:
    """A model, or a list or dict of models, `quote`d (see submit); anything else, futures
    included, as is."""
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return quote(value) if isinstance(value, BaseModel) else value
    return quote(value) if items and all(isinstance(v, BaseModel | None) for v in items) else value


def resolve(
    futures: Mapping[K, PrefectFuture[T]], *, skip: Mapping[K, BaseException] | None = None
) -> tuple[dict[K, T], dict[K, BaseException]]:
    """Results and failures by key; keys in `skip` (whose inputs already failed) are only awaited.

    A step whose input failed never runs: Prefect leaves it Pending('NotReady'), and its result()
    would raise UnfinishedRun. It counts as a failure (NotRun) unless its key is in `skip`.
    """
    results: dict[K, T] = {}
    failures: dict[K, BaseException] = {}
    for key, future in futures.items():
        future.wait()
        if key in (skip or {}):
            continue
        if not future.state.is_final():
            failures[key] = NotRun("not run: an earlier step failed", step=str(key))
            continue
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            failures[key] = outcome
        else:
            results[key] = outcome
    return results, failures


def raise_failures(failures: Mapping[Any, BaseException]) -> None:
    """Raise the failure, or StepsFailed naming each; steps that merely did not run are named only
    when nothing else failed (the failure that stopped them says more)."""
    if not failures:
        return
    errors = [e for e in failures.values() if not isinstance(e, NotRun)] or list(failures.values())
    if len(errors) == 1:
        raise errors[0]
    lines = "; ".join(str(e) for e in errors)
    first = next((e for e in errors if isinstance(e, MeshwrightError)), None)
    raise StepsFailed(f"{len(errors)} steps failed: {lines}", step=first.step if first else None)
