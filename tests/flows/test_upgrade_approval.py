"""The approval point's answers as `flows/upgrade.py` reads them (Prefect's pause stood in for): an
answer is taken as given, and no answer within `istio.upgrade.approve_within` is a roll back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prefect.exceptions import FlowPauseTimeout
from prefect.logging import disable_run_logger

from flows import upgrade
from meshwright.spec import validate_spec

SPEC: dict[str, Any] = {
    "name": "approving",
    "project": "demo-project",
    "istio": {"version": "1.30.3", "upgrade": {"approve": True, "approve_within": "90m"}},
    "clusters": [{"name": "hub", "location": "us-central1-a"}],
}


@pytest.fixture(autouse=True)
def quiet() -> Iterator[None]:
    with disable_run_logger():
        yield


def test_the_pause_waits_as_long_as_the_spec_says_and_returns_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: dict[str, Any] = {}

    def pause(**kwargs: Any) -> upgrade.UpgradeDecision:
        asked.update(kwargs)
        return upgrade.UpgradeDecision(decision="continue")

    monkeypatch.setattr(upgrade, "pause_flow_run", pause)
    assert upgrade._approval(validate_spec(SPEC), "1-29-8", "1-30-3") == "continue"
    assert asked["timeout"] == 90 * 60
    assert asked["wait_for_input"] is upgrade.UpgradeDecision


def test_no_answer_in_time_is_a_roll_back_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def pause(**kwargs: Any) -> None:
        raise FlowPauseTimeout("Flow run was paused and never resumed.")

    monkeypatch.setattr(upgrade, "pause_flow_run", pause)
    answer = upgrade._approval(validate_spec(SPEC), "1-29-8", "1-30-3")
    assert answer == "no answer within 90m"
    assert answer != upgrade.CONTINUE


def test_an_answer_outside_the_two_choices_is_refused_by_the_input_form() -> None:
    with pytest.raises(ValueError, match="continue"):
        upgrade.UpgradeDecision(decision="maybe")
