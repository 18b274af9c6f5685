"""One run per mesh (issue 20): a run of a mesh waits while another holds the mesh's slot; other
meshes, and the subflows of the run that holds it, do not wait."""

from __future__ import annotations

import threading

import pytest
from prefect.concurrency.sync import concurrency

from flows._slots import acting_for, mesh_slot
from meshwright import naming


def held_elsewhere(mesh: str, release: threading.Event, holding: threading.Event) -> threading.Thread:
    """Another run holding the mesh's slot until `release` is set."""

    def hold() -> None:
        with mesh_slot(mesh):
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(30)
    return thread


def test_a_second_run_of_a_mesh_waits_for_the_first_and_other_meshes_do_not() -> None:
    release, holding = threading.Event(), threading.Event()
    first = held_elsewhere("ridge", release, holding)
    try:
        with (
            pytest.raises(TimeoutError),
            concurrency(naming.slot_name("ridge"), timeout_seconds=1, strict=True),
        ):
            pass
        with mesh_slot("other"):  # another mesh: no wait
            pass
    finally:
        release.set()
        first.join()
    with mesh_slot("ridge"):  # free again once the first run is done
        pass


def test_the_run_that_holds_the_slot_and_its_hooks_do_not_wait_for_themselves() -> None:
    with mesh_slot("nested"), mesh_slot("nested"):  # the smoke test's up and down, as subflows
        pass
    release, holding = threading.Event(), threading.Event()
    crashed = held_elsewhere("hooked", release, holding)
    try:
        with acting_for("hooked"), mesh_slot("hooked"):  # a dead run's teardown hook
            pass
    finally:
        release.set()
        crashed.join()


def test_a_run_that_waits_for_the_slot_says_so(caplog: pytest.LogCaptureFixture) -> None:
    release, holding = threading.Event(), threading.Event()
    first = held_elsewhere("quiet", release, holding)
    threading.Timer(1.0, release.set).start()  # the first run ends a second later
    try:
        with caplog.at_level("INFO", logger="meshwright"), mesh_slot("quiet"):
            pass
    finally:
        release.set()
        first.join()
    assert "mesh quiet: another run holds it" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="meshwright"), mesh_slot("quiet"):  # free: no word
        pass
    assert "another run holds it" not in caplog.text
