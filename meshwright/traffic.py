"""Checks of Bookinfo's traffic through a mesh's ingress gateway, as a user would see it: pure.

The tasks send N plain HTTP GETs of `/api/v1/products/0/reviews` and `/productpage` to the ingress
gateway's load-balancer address (the real one on GKE, a loopback address on the sandbox) and read
each answer with `read_reply`. Every request must succeed, every cluster where the spec places a
reviews version must have served some, v2/v3 must show their ratings and the product page its
details. A failure is explained, where the state can tell, by findings read from the clusters and
the Compute API: a firewall rule that does not let one cluster's pod range reach
another's nodes, a Service missing where a caller resolves it, a namespace without injection, pods
without sidecar, a missing Gateway or VirtualService, a multi-network mesh without the
cross-network Gateway (meshwright.findings). The control plane's problems (meshwright.verify) join
them as findings. A reply keeps how long it took (`ms`), as the client that asked measured it.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from pydantic import BaseModel

from meshwright import bookinfo
from meshwright.errors import PermanentError
from meshwright.spec import MeshSpec

REVIEWS_PATH = "/api/v1/products/0/reviews"
PAGE_PATH = "/productpage"
DETAILS_ERROR = "Sorry, product details are currently unavailable for this book."
REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
NO_INGRESS = "the ingress gateway has no load-balancer address (istio-ingressgateway)"


class Reply(BaseModel):
    """One answer seen at the ingress gateway, reduced to what the checks read."""

    path: str
    status: int  # 0: no HTTP answer at all
    first_line: str = ""
    cluster: str | None = None  # the reviews' clustername
    version: str | None = None  # the reviews' version, from its podname (reviews-v3-...)
    ratings_error: str | None = None  # v2/v3: the rating's error instead of stars
    details: bool | None = None  # product page: the details section answered
    ms: float | None = None  # how long the answer took, measured by the client that asked


class TrafficReport(BaseModel):
    mesh: str
    address: str | None
    requests: int
    served: dict[str, dict[str, int]]  # cluster -> reviews version -> answers
    failures: list[str]  # "k x GET path: status first line"
    findings: list[str]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


class TrafficBroken(PermanentError):
    """Requests through the ingress gateway do not all succeed or miss a placed workload."""


def read_reply(path: str, status: int, body: bytes, *, ms: float | None = None) -> Reply:
    """The facts of one answer: which reviews served it (JSON) or whether the page shows details."""
    text = body.decode(errors="replace")
    first = (text.strip().splitlines() or [""])[0][:200]
    reply = Reply(path=path, status=status, first_line=first, ms=ms)
    if path == REVIEWS_PATH and status == 200:
        _read_reviews(reply, text)
    if path == PAGE_PATH and status == 200:
        reply.details = DETAILS_ERROR not in text
        m = re.search(r"Reviews served by:</em>\s*<u>([^<]+)</u>(?:\s*on cluster <u>([^<]+)</u>)?", text)
        if m:
            reply.version, reply.cluster = _version(m[1]), m[2]
        errors = [e for e in (DETAILS_ERROR, REVIEWS_ERROR) if e in text]
        reply.first_line = " ".join(errors) or "(page complete)"
    return reply


def _version(podname: str) -> str | None:
    m = re.match(r"reviews-(v\d+)-", podname)
    return m[1] if m else None


def _read_reviews(reply: Reply, text: str) -> None:
    try:
        doc = json.loads(text)
    except ValueError:
        return
    if not isinstance(doc, dict):
        return
    reply.cluster, reply.version = doc.get("clustername"), _version(str(doc.get("podname", "")))
    ratings = [r.get("rating") for r in doc.get("reviews") or [] if isinstance(r, dict) and r.get("rating")]
    reply.ratings_error = next(
        (str(r["error"]) for r in ratings if isinstance(r, dict) and "error" in r), None
    )


def good(reply: Reply) -> bool:
    if reply.status != 200:
        return False
    if reply.path == PAGE_PATH:
        return bool(reply.details) and reply.first_line != REVIEWS_ERROR
    return True


def unanswered(spec: MeshSpec, replies: list[Reply]) -> list[str]:
    """The placed workloads not yet seen answering through the ingress: every reviews version where
    it is placed, details (a product page with its section), ratings (where v2 or v3 asks for it)."""
    served = _served(replies)
    missing = [
        f"reviews-{v} on {cluster}"
        for cluster, versions in bookinfo.reviews_placement(spec).items()
        for v in versions
        if not served.get(cluster, {}).get(v)
    ]
    if not any(r.path == PAGE_PATH and r.status == 200 and r.details for r in replies):
        missing.append("details-v1")
    rating = [
        v for versions in bookinfo.reviews_placement(spec).values() for v in versions if v in ("v2", "v3")
    ]
    rated = any(r.status == 200 and r.version in rating and not r.ratings_error for r in replies)
    if rating and not rated:
        missing.append("ratings-v1")
    return missing


def _about(findings: list[str], cluster: str) -> list[str]:
    return [f for f in findings if re.search(rf"\b{re.escape(cluster)}\b", f)]


def _failure_lines(replies: list[Reply]) -> list[str]:
    grouped = Counter((r.path, r.status, r.first_line) for r in replies if r.status != 200)
    return [
        f"{k} x GET {path}: {status or 'no answer'} {line}".rstrip()
        for (path, status, line), k in grouped.items()
    ]


def check_traffic(
    spec: MeshSpec,
    address: str | None,
    replies: list[Reply],
    findings: list[str],
    *,
    error: str | None = None,
) -> TrafficReport:
    """Every request good, every placed reviews version seen, ratings shown; why not, where known."""
    reviews = [r for r in replies if r.path == REVIEWS_PATH]
    served = _served(replies)
    problems = ([error] if error else []) + _failed_requests(replies)
    problems += _details(spec, [r for r in replies if r.path == PAGE_PATH], findings)
    problems += _unanswered(spec, served, reviews, findings) + _without_ratings(reviews, findings)
    if problems and findings:
        problems += [f"found: {f}" for f in findings if not any(f in p for p in problems)]
    return TrafficReport(
        mesh=spec.name,
        address=address,
        requests=len(replies),
        served=served,
        failures=_failure_lines(replies),
        findings=findings,
        problems=problems,
    )


def _served(replies: list[Reply]) -> dict[str, dict[str, int]]:
    """Good answers per cluster and reviews version, from the reviews API and the product page alike."""
    served: dict[str, dict[str, int]] = {}
    for r in replies:
        if r.status == 200 and r.cluster and r.version:
            served.setdefault(r.cluster, {}).setdefault(r.version, 0)
            served[r.cluster][r.version] += 1
    return served


def _failed_requests(replies: list[Reply]) -> list[str]:
    problems = []
    for path in (REVIEWS_PATH, PAGE_PATH):
        sent = [r for r in replies if r.path == path]
        bad = [r for r in sent if not good(r)]
        if bad:
            what = Counter(f"{r.status or 'no answer'} {r.first_line}".strip() for r in bad)
            problems.append(f"{len(bad)}/{len(sent)} requests to {path} failed: " + "; ".join(what))
    return problems


def _explained(line: str, findings: list[str], cluster: str) -> str:
    """The line, followed by the findings that name the cluster, if any."""
    why = _about(findings, cluster)
    return line + (f" ({'; '.join(why)})" if why else "")


def _unanswered(
    spec: MeshSpec, served: dict[str, dict[str, int]], reviews: list[Reply], findings: list[str]
) -> list[str]:
    """Each placed reviews version that never answered, with how the reviews requests failed."""
    failed = Counter(r.status for r in reviews if r.status != 200)
    got = ", ".join(f"{k}/{len(reviews)} requests got {s or 'no answer'}" for s, k in failed.items())
    return [
        _explained(
            f"reviews-{v} on {cluster} never answered" + (f": {got}" if got else ""), findings, cluster
        )
        for cluster, versions in bookinfo.reviews_placement(spec).items()
        for v in versions
        if not served.get(cluster, {}).get(v)
    ]


def _without_ratings(reviews: list[Reply], findings: list[str]) -> list[str]:
    without = Counter((r.cluster, r.version, r.ratings_error) for r in reviews if r.ratings_error)
    return [
        _explained(
            f"reviews-{ver} on {where} answered without ratings {k} time(s): {err}", findings, str(where)
        )
        for (where, ver, err), k in without.items()
    ]


def _details(spec: MeshSpec, pages: list[Reply], findings: list[str]) -> list[str]:
    """details runs where placed; product pages without its section say it never answered there."""
    missing = [p for p in pages if p.status == 200 and p.details is False]
    if not missing or any(p.details for p in pages):
        return []
    where = [
        c.name for c in spec.clusters if any(w.service == "details" for w in bookinfo.placed(spec, c.name))
    ]
    shown = f"{len(missing)}/{len(pages)} product pages show '{DETAILS_ERROR}'"
    return [_explained(f"details-v1 on {c} never answered: {shown}", findings, c) for c in where]


def traffic_failure(report: TrafficReport) -> TrafficBroken:
    lines = "\n".join(f"  {p}" for p in report.problems)
    return TrafficBroken(
        f"traffic through the ingress of mesh {report.mesh} ({report.address}) has "
        f"{len(report.problems)} problem(s):\n{lines}",
        step="verify",
    )


def traffic_rows(spec: MeshSpec, report: TrafficReport) -> list[dict[str, str]]:
    """One row per placed reviews version (answers seen), then one per kind of failure."""
    rows = [
        {"cluster": c, "workload": f"reviews-{v}", "answers": str(report.served.get(c, {}).get(v, 0))}
        for c, versions in bookinfo.reviews_placement(spec).items()
        for v in versions
    ]
    return rows + [{"cluster": "-", "workload": "failed", "answers": f} for f in report.failures]
