"""One run per mesh: every flow that changes or reads a mesh holds its slot.

The slot is a Prefect global concurrency limit `mesh-<name>` of 1, so a second run of the same mesh
(CLI, UI Run, Retry, schedule) waits for the first, on whatever worker it runs, while two meshes
never wait for each other. The slot is held with a lease that the holder renews; a run whose
process died stops renewing, and its slot is free again after LEASE_SECONDS. A flow that runs
another as a subflow (the smoke test's up and down) holds the slot for both: the subflow, in the same
thread, sees that its run already holds it.

A flow takes its slot first, before any task of its own: on the local server the slot's request
waited 1.9-2.4 s when tasks had just run (the server was still recording them), 0.01 s at a run's
start (measured with Prefect 3.9's server on SQLite). Its preflight then also sees the mesh as the
previous run left it, not half-way through that run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from contextvars import ContextVar

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import MissingContextError, ObjectAlreadyExists

from meshwright import naming

LEASE_SECONDS = 60.0
_HELD: ContextVar[frozenset[str]] = ContextVar("meshwright_held_mesh_slots", default=frozenset())


@contextmanager
def mesh_slot(mesh: str) -> Iterator[None]:
    """Hold the mesh's slot for the body; wait while another run holds it."""
    name = naming.slot_name(mesh)
    if name in _HELD.get():  # a subflow of the run that holds it
        yield
        return
    _ensure_limit(name)
    with ExitStack() as slot:
        try:  # at once, when it is free
            slot.enter_context(_slot(name, max_retries=0))
        except ConcurrencySlotAcquisitionError:  # taken: say so, then wait (the run was silent)
            _logger().info(
                "mesh %s: another run holds it, or held it and stopped (its hold then ends within "
                "%.0f s); waiting for it",
                mesh,
                LEASE_SECONDS,
            )
            slot.enter_context(_slot(name))
        held = _HELD.set(_HELD.get() | {name})
        try:
            yield
        finally:
            _HELD.reset(held)


def _slot(name: str, *, max_retries: int | None = None) -> AbstractContextManager[None]:
    return concurrency(name, occupy=1, lease_duration=LEASE_SECONDS, strict=True, max_retries=max_retries)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger (the UI and the CLI show it); outside a run, meshwright's."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("meshwright")


@contextmanager
def acting_for(mesh: str) -> Iterator[None]:
    """For a run's hooks, after its process was cancelled or died: they act for the run that held
    the slot (a crashed run's lease has not run out yet), so they do not wait for it."""
    held = _HELD.set(_HELD.get() | {naming.slot_name(mesh)})
    try:
        yield
    finally:
        _HELD.reset(held)


def _ensure_limit(name: str) -> None:
    """The limit exists with 1 slot (created on first use; two first runs may both try)."""
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.upsert_global_concurrency_limit_by_name(name, 1)
