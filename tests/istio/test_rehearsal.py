"""The upgrade rehearsal's verdict (meshwright.rehearsal, pure): each request belongs to the phase it
was sent in, a failed one fails the rehearsal naming its phase, and a spec that cannot rehearse is
refused before anything is built."""

from __future__ import annotations

from typing import Any

import pytest

from meshwright import rehearsal
from meshwright.errors import Refused
from meshwright.models import Timing
from meshwright.spec import validate_spec
from meshwright.traffic import PAGE_PATH, Reply

SPEC: dict[str, Any] = {
    "name": "rehearsed",
    "project": "demo-project",
    "clusters": [{"name": "hub", "location": "us-central1-a"}],
    "bookinfo": {"placement": {"hub": ["productpage-v1", "details-v1", "reviews-v1", "ratings-v1"]}},
}
PHASES = [
    Timing(step="move tag to 1-30-3", started=10, finished=20),
    Timing(step="verify mesh", started=20, finished=25),
]


def _reply(ok: bool) -> Reply:
    if ok:
        return Reply(path=PAGE_PATH, status=200, first_line="(page complete)", details=True)
    return Reply(path=PAGE_PATH, status=503, first_line="no healthy upstream")


def test_requests_count_in_the_phase_they_were_sent_in_and_a_failure_names_it() -> None:
    seen = [
        (5.0, _reply(True)),
        (12.0, _reply(True)),
        (19.9, _reply(False)),
        (21.0, _reply(True)),
        (30.0, _reply(True)),
    ]
    found = rehearsal.count(validate_spec(SPEC), "1.29.8", PHASES, seen)
    assert [(p.phase, p.requests, p.failed) for p in found.phases] == [
        ("move tag to 1-30-3", 2, 1),
        ("verify mesh", 1, 0),
        (rehearsal.OUTSIDE, 2, 0),
    ]
    assert not found.ok
    assert found.problem() == (
        "1 of 5 requests through the ingress failed during the upgrade from 1.29.8 to 1.30.3 "
        "(1 during move tag to 1-30-3)"
    )
    assert found.failures == ["00:00:19 503: no healthy upstream"]
    assert "| move tag to 1-30-3 | 10.0 | 2 | 1 |" in rehearsal.markdown(found)


def test_a_rehearsal_where_no_request_went_through_is_not_a_pass() -> None:
    found = rehearsal.count(validate_spec(SPEC), "1.29.8", PHASES, [])
    assert not found.ok
    assert found.problem() == "no request went through the ingress during the upgrade"


@pytest.mark.parametrize(
    ("spec", "version", "said"),
    [
        (SPEC, "1.30.3", "nothing to upgrade"),
        (SPEC, "2.0.0", "not a supported Istio version"),
        ({**SPEC, "bookinfo": None}, "1.29.8", "needs a bookinfo section"),
    ],
)
def test_a_spec_that_cannot_rehearse_is_refused(spec: dict[str, Any], version: str, said: str) -> None:
    with pytest.raises(Refused, match=said):
        rehearsal.older(validate_spec(spec), version)


def test_the_older_mesh_differs_only_in_its_istio_version() -> None:
    mesh = validate_spec(SPEC)
    first = rehearsal.older(mesh, "1.29.8")
    assert first.istio.version == "1.29.8"
    assert first.model_dump(exclude={"istio"}) == mesh.model_dump(exclude={"istio"})
