"""The drills' pure decisions: which workload the failover drill takes away, and how a drill's
requests are judged."""

from __future__ import annotations

import pytest

from meshwright import drills
from meshwright.drills import DrillFailed, RotatedToken, Timed, Victim
from meshwright.models import TeardownReport
from meshwright.smoke import render_markdown
from meshwright.traffic import DETAILS_ERROR, PAGE_PATH, REVIEWS_PATH, Reply
from meshwright.verify import VerifyReport, broken
from tests.dataplane.meshes import CENTRAL, EAST, WEST, mesh_spec, primary_remote

WEST_V3 = Victim(cluster="west", version="v3", namespace="bookinfo")


def answer(at: float, cluster: str, version: str, status: int = 200) -> Timed:
    return Timed(at=at, reply=Reply(path=REVIEWS_PATH, status=status, cluster=cluster, version=version))


def page(at: float, *, details: bool = True) -> Timed:
    line = "(page complete)" if details else DETAILS_ERROR
    return Timed(at=at, reply=Reply(path=PAGE_PATH, status=200, details=details, first_line=line))


def steady(start: float, end: float, *, every: float = 0.1, west: bool = True) -> list[Timed]:
    """Reviews answers round robin over central v1, v2 and (while `west`) west v3."""
    where = [("central", "v1"), ("central", "v2")] + ([("west", "v3")] if west else [])
    n = round((end - start) / every)
    return [answer(round(start + i * every, 3), *where[i % len(where)]) for i in range(n)]


def test_the_victim_is_the_version_alone_in_its_cluster() -> None:
    assert drills.failover_victim(primary_remote()) == WEST_V3


def test_the_victim_is_one_that_serves_now_when_locality_keeps_callers_at_home() -> None:
    answered = {"central": {"v1": 3, "v2": 3}}  # a locality DestinationRule: west's v3 gets nothing
    assert drills.failover_victim(primary_remote(), answered) == Victim(
        cluster="central", version="v1", namespace="bookinfo"
    )


def test_a_mesh_with_reviews_in_one_cluster_has_nothing_to_fail_over_to() -> None:
    spec = mesh_spec(
        "one",
        [CENTRAL, WEST, EAST],
        {"central": ["productpage-v1", "reviews-v1", "reviews-v2", "ratings-v1", "details-v1"]},
    )
    with pytest.raises(DrillFailed, match="reviews placed in two clusters at least"):
        drills.failover_victim(spec)


def test_unknown_drills_are_named_at_once_and_repeats_run_once() -> None:
    with pytest.raises(
        DrillFailed, match=r"unknown drill\(s\) chaos, upgrade: choose from failover, rotate-secrets"
    ):
        drills.parse(["failover", "chaos", "upgrade"])
    assert drills.parse(["rotate-secrets", "failover", "rotate-secrets"]) == ["rotate-secrets", "failover"]


def test_a_failover_that_moved_to_central_and_came_back_holds() -> None:
    samples = steady(0, 1) + steady(1.0, 2.5, west=False) + steady(2.5, 3.0)
    marks = {"down": 1.0, "restore": 2.4, "up": 2.45}

    result = drills.judge_failover(WEST_V3, samples, marks, seconds=3.0)

    assert result.ok, result.problems
    assert result.failover_seconds == 0.0
    assert result.back_seconds == pytest.approx(0.25)  # its first answer at 2.7 s, ready at 2.45 s
    assert result.served["west"] == {"v3": 4}


def test_a_version_still_answering_at_zero_replicas_fails_the_drill() -> None:
    samples = steady(0, 3.0)  # west keeps answering: its endpoints never left
    result = drills.judge_failover(WEST_V3, samples, {"down": 1.0, "restore": 2.4, "up": 2.45}, seconds=3.0)
    assert result.problems == [
        "requests did not leave reviews-v3 on west for the other clusters while it was at 0 replicas"
    ]


def test_failed_requests_and_a_version_that_never_came_back_are_each_a_problem() -> None:
    samples = [*steady(0, 1), answer(1.2, "", "", status=503), *steady(1.3, 3.0, west=False)]
    result = drills.judge_failover(WEST_V3, samples, {"down": 1.0, "restore": 2.5, "up": 2.6}, seconds=3.0)
    assert result.failed == 1
    assert result.problems[0].startswith("1/")
    assert "GET /api/v1/products/0/reviews: 503" in result.problems[0]
    assert result.problems[-1] == "reviews-v3 on west did not answer again after it was scaled back"


def test_a_rotation_that_lost_east_fails_naming_what_stopped_answering() -> None:
    rotated = [
        RotatedToken(cluster="east", old_secret="a", new_secret="b", primaries=["central"], revoked=True)
    ]
    samples = [*steady(0, 2.0), page(0.5), page(1.5, details=False)]
    result = drills.judge_rotation(primary_remote(), rotated, samples, revoked_at=1.0, seconds=2.0)
    assert "details-v1 did not answer after the rotation" in result.problems


def test_a_rotation_that_kept_the_old_token_says_so() -> None:
    rotated = [
        RotatedToken(
            cluster="west", old_secret="a", new_secret="b", primaries=["central"], problem="not synced"
        )
    ]
    result = drills.judge_rotation(primary_remote(), rotated, [], revoked_at=None, seconds=1.0)
    assert result.problems == ["west: not synced"]


def test_a_failed_drill_fails_the_verification_naming_the_drill_and_why() -> None:
    bad = drills.DrillResult(drill="failover", subject="reviews-v3 on west", problems=["it never came back"])
    report = VerifyReport(mesh="m", tables=[], roots={}, problems=[], drills=[bad])

    error = broken(report)

    assert not report.ok
    assert error is not None
    assert "drill failover (reviews-v3 on west): it never came back" in error.message
    assert report.model_dump(mode="json")["drills"][0]["ok"] is False


def test_the_smoke_report_has_a_row_per_drill() -> None:
    held = drills.DrillResult(
        drill="failover",
        subject="reviews-v3 on west",
        requests=40,
        served={"central": {"v1": 40}},
        back_seconds=0.4,
    )
    verified = VerifyReport(mesh="m1", tables=[], roots={}, problems=[], drills=[held])
    down = TeardownReport(mesh="m1", deleted_clusters=[], firewall="gone", waited=True, seconds=1.0)

    markdown = render_markdown(primary_remote(), None, verified, down, [], {})

    assert "## Drills" in markdown
    assert "| failover | reviews-v3 on west | yes | 40/40 ok | central: 40 | 0.4s | - |" in markdown
