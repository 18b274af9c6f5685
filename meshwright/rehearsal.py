"""The nightly upgrade rehearsal's verdict: requests sent through the ingress while `up` moved the
mesh from one Istio version to the next, counted per phase of the upgrade. Pure: the flow sends
and times the requests (tasks/verify.py `SteadyTraffic`), `up` times its phases (flows/upgrade.py).

A request belongs to the phase during which it was sent; one sent outside every phase (before
`up` began, after its verification ended) counts under "outside the upgrade's phases".
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from meshwright.errors import Refused
from meshwright.models import PhaseTraffic, Rehearsal, Timing
from meshwright.spec import MeshSpec, check_version
from meshwright.traffic import Reply, good

OUTSIDE = "outside the upgrade's phases"
SHOWN_FAILURES = 10


def older(mesh: MeshSpec, version: str) -> MeshSpec:
    """The mesh at Istio `version`, which a rehearsal builds first; refused when it cannot rehearse."""
    try:
        check_version(version)
    except ValueError as e:
        raise Refused(f"upgrade_from {version!r}: {e}", step="preflight") from None
    if version == mesh.istio.version:
        raise Refused(
            f"upgrade_from is the spec's own istio.version ({version}): nothing to upgrade", step="preflight"
        )
    if mesh.bookinfo is None:
        raise Refused(
            "an upgrade rehearsal sends its requests through Bookinfo's ingress: the spec needs a bookinfo section",
            step="preflight",
        )
    return mesh.model_copy(update={"istio": mesh.istio.model_copy(update={"version": version})})


def count(
    mesh: MeshSpec, version: str, phases: Sequence[Timing], seen: Sequence[tuple[float, Reply]]
) -> Rehearsal:
    """The requests `seen` (when each was sent, its answer) during the upgrade's `phases`."""
    rows = {
        p.step: PhaseTraffic(phase=p.step, seconds=round(p.seconds, 2), requests=0, failed=0) for p in phases
    }
    outside = PhaseTraffic(phase=OUTSIDE, seconds=None, requests=0, failed=0)
    failures = []
    for when, reply in seen:
        row = next((rows[p.step] for p in phases if p.started <= when < p.finished), outside)
        row.requests += 1
        if not good(reply):
            row.failed += 1
            failures.append(f"{_clock(when)} {reply.status}: {reply.first_line[:120]}")
    listed = list(rows.values()) + ([outside] if outside.requests else [])
    return Rehearsal(
        from_version=version,
        to_version=mesh.istio.version,
        requests=len(seen),
        failed=len(failures),
        failures=failures[:SHOWN_FAILURES],
        phases=listed,
    )


def _clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(when))


def markdown(rehearsal: Rehearsal) -> list[str]:
    """The rehearsal's section of the smoke test's report."""
    verdict = "no request failed" if rehearsal.ok else (rehearsal.problem() or "")
    rows = [
        f"| {p.phase} | {'-' if p.seconds is None else f'{p.seconds:.1f}'} | {p.requests} | {p.failed} |"
        for p in rehearsal.phases
    ]
    lines = [
        "",
        f"## Upgrade {rehearsal.from_version} → {rehearsal.to_version}",
        "",
        f"{rehearsal.requests} requests through the ingress while `up` upgraded the mesh: {verdict}.",
        "",
        "| phase | seconds | requests | failed |",
        "|---|---|---|---|",
        *rows,
    ]
    return lines + (
        ["", "Failed requests (first ones):", "", *(f"- {f}" for f in rehearsal.failures)]
        if rehearsal.failures
        else []
    )
