"""Drills: break one thing on purpose while requests flow through the ingress, judge what the
requests met, put it back. Pure: which workload a drill takes away, what must hold, the report.

- `failover`: one placed reviews version is scaled to 0 in its cluster. Its pods leave the
  Service's EndpointSlices, istiod pushes the smaller endpoint set (EDS) and the callers' proxies
  send reviews requests to the endpoints left in the other clusters. Every request must succeed,
  the version must stop answering once its pods are gone, others must serve meanwhile, and it must
  answer again once it is scaled back.
- `rotate-secrets`: every cluster's reader token is replaced in the order that never leaves a
  primary's istiod without a working kubeconfig: a new token (a new token Secret), the new remote
  secret in each primary, the primary's istiod synced with it, then the old token revoked (its
  Secret deleted). istiod swaps a changed kubeconfig make-before-break (Istio 1.30,
  pkg/kube/multicluster/secretcontroller.go), so no request may fail and every placed workload must
  still answer after the last revocation.

A drill's result carries names, counts and seconds, never a token.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, computed_field

from meshwright import bookinfo
from meshwright.errors import PermanentError
from meshwright.spec import MeshSpec
from meshwright.traffic import Reply, good, unanswered

FAILOVER = "failover"
ROTATE_SECRETS = "rotate-secrets"
DRILLS: tuple[str, ...] = (FAILOVER, ROTATE_SECRETS)
QUIET_SECONDS = 1.0  # the version taken away must have been silent this long while others answered
SERVED_MEANWHILE = 5  # good answers from the others within that quiet time


class DrillFailed(PermanentError):
    """A drill found the mesh not resilient to what it did; one line per problem."""


class Victim(BaseModel):
    """The reviews version the failover drill scales to 0, and where."""

    cluster: str
    version: str
    namespace: str

    @property
    def deployment(self) -> str:
        return f"reviews-{self.version}"

    def __str__(self) -> str:
        return f"{self.deployment} on {self.cluster}"


class Timed(BaseModel):
    """One answer at the ingress during a drill, `at` seconds after the drill began."""

    at: float
    reply: Reply


class RotatedToken(BaseModel):
    """One cluster's reader token rotation, by Secret names (never the token)."""

    cluster: str
    old_secret: str
    new_secret: str
    primaries: list[str]
    synced_seconds: float | None = None  # from the first write until every primary synced it
    revoked: bool = False
    problem: str = ""


class DrillResult(BaseModel):
    drill: str
    subject: str  # what the drill took away or replaced, in a person's words
    requests: int = 0  # sent through the ingress while the drill ran
    failed: int = 0
    served: dict[str, dict[str, int]] = Field(default_factory=dict)  # cluster -> reviews version -> answers
    seconds: float = 0.0  # how long the drill ran
    failover_seconds: float | None = None  # failover: from the pods gone to the version's last answer
    back_seconds: float | None = None  # failover: from scaled back (ready) to its first answer again
    rotated: list[RotatedToken] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return not self.problems


def parse(names: list[str]) -> list[str]:
    """The drills asked for, each once, in the order asked; every unknown name at once."""
    unknown = [n for n in names if n not in DRILLS]
    if unknown:
        raise DrillFailed(f"unknown drill(s) {', '.join(unknown)}: choose from {', '.join(DRILLS)}")
    return list(dict.fromkeys(names))


def failover_victim(spec: MeshSpec, answered: dict[str, dict[str, int]] | None = None) -> Victim:
    """The reviews version to take away: one whose callers have reviews in another cluster to fail
    over to and, when `answered` (cluster -> version -> answers seen) says, one that serves now (a
    DestinationRule with locality failover keeps callers on their own region's versions). A cluster
    that runs a single reviews version goes first (then every reviews answer of that cluster stops,
    and only the other clusters can serve), then the spec's order."""
    placement = bookinfo.reviews_placement(spec)
    candidates = [(c, v) for c, versions in placement.items() for v in versions if len(placement) > 1]
    if spec.bookinfo is None or not candidates:
        raise DrillFailed(
            "the failover drill needs Bookinfo's reviews placed in two clusters at least "
            f"(placed: {placement or 'nowhere'})",
            step="drill",
        )
    serving = [(c, v) for c, v in candidates if (answered or {}).get(c, {}).get(v)]
    cluster, version = min(serving or candidates, key=lambda cv: len(placement[cv[0]]))
    return Victim(cluster=cluster, version=version, namespace=spec.bookinfo.namespace)


def answered_by(sample: Timed, victim: Victim) -> bool:
    return sample.reply.status == 200 and (sample.reply.cluster, sample.reply.version) == (
        victim.cluster,
        victim.version,
    )


def served(samples: list[Timed]) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for s in samples:
        r = s.reply
        if r.status == 200 and r.cluster and r.version:
            found.setdefault(r.cluster, {}).setdefault(r.version, 0)
            found[r.cluster][r.version] += 1
    return found


def failed_lines(samples: list[Timed]) -> list[str]:
    """What the failed requests got, one line per kind, with the first time it happened."""
    bad = [s for s in samples if not good(s.reply)]
    kinds: dict[str, list[Timed]] = {}
    for s in bad:
        kinds.setdefault(
            f"GET {s.reply.path}: {s.reply.status or 'no answer'} {s.reply.first_line}", []
        ).append(s)
    return [
        f"{len(v)}/{len(samples)} requests failed ({k.strip()}), first at {v[0].at:.1f}s"
        for k, v in kinds.items()
    ]


def failed_over(samples: list[Timed], victim: Victim, down: float, now: float) -> bool:
    """The victim has been silent for QUIET_SECONDS since its pods went while others answered."""
    last = max([s.at for s in samples if s.at >= down and answered_by(s, victim)], default=down)
    others = [s for s in samples if s.at > last and good(s.reply) and not answered_by(s, victim)]
    return now - last >= QUIET_SECONDS and len(others) >= SERVED_MEANWHILE


def back(samples: list[Timed], victim: Victim, up: float) -> float | None:
    """Seconds from the version's pods ready again to its first answer; None when it never answered."""
    return next((s.at - up for s in samples if s.at >= up and answered_by(s, victim)), None)


def judge_failover(
    victim: Victim, samples: list[Timed], marks: dict[str, float | None], *, seconds: float
) -> DrillResult:
    """`marks`: seconds into the drill when the victim's pods were gone (`down`), when it was scaled
    back (`restore`) and when its pods were ready again (`up`); None for what never happened."""
    result = _counted(FAILOVER, str(victim), samples, seconds)
    down, restore, up = marks.get("down"), marks.get("restore"), marks.get("up")
    if down is None:
        result.problems.append(f"{victim} could not be scaled to 0")
    else:
        end = restore if restore is not None else seconds
        last = max([s.at for s in samples if down <= s.at < end and answered_by(s, victim)], default=down)
        result.failover_seconds = round(last - down, 2)
        if not failed_over([s for s in samples if s.at < end], victim, down, end):
            result.problems.append(
                f"requests did not leave {victim} for the other clusters while it was at 0 replicas"
            )
    if up is None:
        result.problems.append(f"{victim} did not come back to its replicas")
        return result
    result.back_seconds = _rounded(back(samples, victim, up))
    if result.back_seconds is None:
        result.problems.append(f"{victim} did not answer again after it was scaled back")
    return result


def judge_rotation(
    spec: MeshSpec,
    rotated: list[RotatedToken],
    samples: list[Timed],
    *,
    revoked_at: float | None,
    seconds: float,
) -> DrillResult:
    """No request failed, every token was replaced and its predecessor revoked, and every placed
    workload answered after the last revocation (`revoked_at`): no primary lost a cluster."""
    names = ", ".join(r.cluster for r in rotated) or "no cluster"
    result = _counted(ROTATE_SECRETS, f"the reader tokens of {names}", samples, seconds)
    result.rotated = rotated
    result.problems += [f"{r.cluster}: {r.problem}" for r in rotated if r.problem]
    result.problems += [
        f"{r.cluster}: the old token Secret {r.old_secret} was not revoked"
        for r in rotated
        if not r.revoked and not r.problem
    ]
    if revoked_at is not None and spec.bookinfo is not None:
        after = [s.reply for s in samples if s.at >= revoked_at]
        result.problems += [f"{m} did not answer after the rotation" for m in unanswered(spec, after)]
    return result


def _counted(drill: str, subject: str, samples: list[Timed], seconds: float) -> DrillResult:
    bad = [s for s in samples if not good(s.reply)]
    return DrillResult(
        drill=drill,
        subject=subject,
        requests=len(samples),
        failed=len(bad),
        served=served(samples),
        seconds=round(seconds, 2),
        problems=failed_lines(samples),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def failure(results: list[DrillResult]) -> DrillFailed | None:
    """The error of the drills that failed, naming each drill, what it took away and why; None when all held."""
    lines = [f"  drill {r.drill} ({r.subject}): {p}" for r in results for p in r.problems]
    if not lines:
        return None
    return DrillFailed(f"{len(lines)} drill problem(s):\n" + "\n".join(lines), step="drill")


def rows(results: list[DrillResult]) -> list[dict[str, str]]:
    """One row per drill, for the Prefect table artifact and the CLI."""
    return [
        {
            "drill": r.drill,
            "subject": r.subject,
            "ok": "yes" if r.ok else "no",
            "requests": f"{r.requests - r.failed}/{r.requests} ok",
            "served": ", ".join(f"{c}: {sum(v.values())}" for c, v in sorted(r.served.items())),
            "back": "" if r.back_seconds is None else f"{r.back_seconds:.1f}s",
            "problems": "; ".join(r.problems),
        }
        for r in results
    ]
