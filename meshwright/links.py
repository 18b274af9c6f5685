"""The verdict of each link of a mesh: every (primary, cluster) pair it needs, checked end to end.

A link holds when the primary's istiod reaches the cluster's API with its remote secret and has it
`synced`, both share one root, the gateways between them are in place and, where the primary
configures the ingress gateway, the cluster's Bookinfo workloads answered the counted requests
through it. A broken link names the first layer that broke, in the order a request meets them
(`LAYERS`), and why. Pure: the tasks observe, meshwright.verify and meshwright.traffic check, this
module only combines their facts per link.

Latency is what the client measured for each counted request (`Reply.ms`), gathered per cluster
over the answers it certainly took part in: the reviews that named their cluster, and productpage,
details or ratings where a single cluster runs them and the answer shows them. Nothing is estimated:
a cluster that served no answer has no latency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from meshwright import bookinfo, naming
from meshwright.findings import Finding, firewall_gap
from meshwright.remote_secrets import pairs
from meshwright.spec import MeshSpec
from meshwright.traffic import NO_INGRESS, PAGE_PATH, REVIEWS_PATH, Reply, TrafficReport, good
from meshwright.verify import (
    NOT_LISTED,
    SYNCED,
    Latency,
    Link,
    Observation,
    eastwest_problem,
    istiod_problem,
    no_cacerts,
)

LAYERS = (
    "cluster",
    "remote secret",
    "RBAC",
    "istiod",
    "root",
    "gateway",
    "firewall",
    "endpoints",
    "sidecar",
)
RATED = ("v2", "v3")  # the reviews versions that show ratings
Broke = tuple[str, str]  # (layer, reason)


@dataclass(frozen=True)
class _Traffic:
    """What the traffic check saw: its report, the replies behind it and the causes found."""

    report: TrafficReport
    replies: Sequence[Reply]
    causes: Sequence[Finding]
    carried: dict[str, list[Reply]]  # cluster -> the good replies it took part in


def judge(
    spec: MeshSpec,
    seen: dict[str, Observation],
    *,
    traffic: TrafficReport | None = None,
    replies: Sequence[Reply] = (),
    causes: Sequence[Finding] = (),
) -> list[Link]:
    """One verdict per pair of `remote_secrets.pairs`, in its order.

    Args:
        spec: the validated mesh spec.
        seen: every cluster's control-plane observation (one with `error` for a cluster that is gone).
        traffic: the traffic report, when Bookinfo's traffic was checked.
        replies: the counted requests' replies behind `traffic`.
        causes: what the clusters and the VPC say about failed traffic (meshwright.findings).
    """
    checked = None if traffic is None else _Traffic(traffic, replies, causes, _carried(spec, replies))
    return [_link(spec, seen, primary, cluster, checked) for cluster, primary in pairs(spec)]


def _link(
    spec: MeshSpec, seen: dict[str, Observation], primary: str, cluster: str, traffic: _Traffic | None
) -> Link:
    p, c = seen.get(primary), seen.get(cluster)
    link = Link(
        primary=primary,
        cluster=cluster,
        ok=True,
        api=_api(p, cluster),
        same_root=_same_root(p, c),
        synced=_synced(p, cluster),
    )
    if traffic is not None and _carries(spec, primary, cluster):
        carried = traffic.carried.get(cluster, [])
        times = [r.ms for r in carried if r.ms is not None]
        link.served = len(carried)
        link.latency_ms = Latency(p50=percentile(times, 0.50), p95=percentile(times, 0.95))
    broke = _control_plane(spec, seen, primary, cluster)
    if broke is None and traffic is not None and link.served is not None:
        broke = _traffic(spec, cluster, traffic)
    if broke is not None:
        link.ok, (link.layer, link.reason) = False, broke
    return link


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least a fraction `q` of them at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 1)


def _api(p: Observation | None, cluster: str) -> str:
    if p is None or p.error or p.clusterz is None:
        return "unknown"
    return "ok" if p.clusterz.get(cluster) == SYNCED else p.secrets.get(cluster, "not diagnosed")


def _same_root(p: Observation | None, c: Observation | None) -> bool | None:
    if p is None or c is None or p.error or c.error:
        return None
    return p.root is not None and p.root == c.root


def _synced(p: Observation | None, cluster: str) -> str:
    return "unknown" if p is None or p.clusterz is None else p.clusterz.get(cluster, NOT_LISTED)


def _carries(spec: MeshSpec, primary: str, cluster: str) -> bool:
    """Traffic through the ingress reaches the cluster by this link: the primary configures the
    ingress gateway (its endpoints are the gateway's), and the cluster runs some of Bookinfo."""
    return primary in bookinfo.config_clusters(spec) and bool(bookinfo.placed(spec, cluster))


# -- which answers a cluster took part in ----------------------------------------------------


def _sole(spec: MeshSpec, service: str) -> set[str]:
    """The cluster that runs `service`, when only one does (else an answer cannot tell which)."""
    where = {
        c.name for c in spec.clusters if any(w.service == service for w in bookinfo.placed(spec, c.name))
    }
    return where if len(where) == 1 else set()


def took_part(spec: MeshSpec, reply: Reply) -> set[str]:
    """The clusters that certainly took part in a good answer."""
    if not good(reply):
        return set()
    where = _sole(spec, "productpage") | ({reply.cluster} if reply.cluster else set())
    if reply.details:
        where |= _sole(spec, "details")
    if reply.path == REVIEWS_PATH and reply.version in RATED and not reply.ratings_error:
        where |= _sole(spec, "ratings")
    return where


def _carried(spec: MeshSpec, replies: Sequence[Reply]) -> dict[str, list[Reply]]:
    carried: dict[str, list[Reply]] = {}
    for reply in replies:
        for cluster in took_part(spec, reply):
            carried.setdefault(cluster, []).append(reply)
    return carried


# -- what broke ------------------------------------------------------------------------------


def _control_plane(spec: MeshSpec, seen: dict[str, Observation], primary: str, cluster: str) -> Broke | None:
    p, c = seen.get(primary), seen.get(cluster)
    if c is None or c.error:
        return "cluster", f"{cluster}: {c.error if c else 'not observed'}"
    if p is None or p.error:
        return "cluster", f"{primary}: {p.error if p else 'not observed'}"
    if p.clusterz is None:
        return "istiod", f"{primary}: cannot read istiod's clusterz: {p.clusterz_error}"
    status = p.clusterz.get(cluster, NOT_LISTED)
    if status != SYNCED:
        why = p.secrets.get(cluster, "not diagnosed")
        secret = naming.remote_secret_name(cluster)
        return _secret_layer(
            why
        ), f"{primary} does not see {cluster}: {status} (remote secret {secret}: {why})"
    return _root(primary, p, cluster, c) or _gateway(spec, primary, p, cluster, c)


def _secret_layer(why: str) -> str:
    """The layer a remote secret's diagnosis (tasks/verify.py `diagnose`) points at."""
    if why.startswith("RBAC:"):
        return "RBAC"
    if why.startswith("ok"):
        return "istiod"  # the kubeconfig works; istiod has not caught up
    if why.startswith("cannot reach"):
        return "cluster"
    return "remote secret"


def _root(primary: str, p: Observation, cluster: str, c: Observation) -> Broke | None:
    if c.root is None or p.root is None:
        return "root", no_cacerts(cluster if c.root is None else primary)
    if c.root != p.root:
        return "root", f"{cluster}'s cacerts root {c.root[:16]} differs from {primary}'s {p.root[:16]}"
    return None


def _gateway(spec: MeshSpec, primary: str, p: Observation, cluster: str, c: Observation) -> Broke | None:
    remote = spec.cluster(cluster).primary == primary
    problem = (
        eastwest_problem(spec, primary, p)
        or eastwest_problem(spec, cluster, c)
        or (istiod_problem(cluster, c, primary, p) if remote else None)
    )
    return ("gateway", problem) if problem else None


def _unanswered(spec: MeshSpec, cluster: str, traffic: _Traffic) -> list[str]:
    """What the cluster's workloads failed to answer, as the traffic check counts it: its reviews
    versions by the cluster they named, its reviews answering without ratings, and productpage,
    details or ratings running there when no answer showed them (and some showed their error)."""
    replies, served = traffic.replies, traffic.report.served.get(cluster, {})
    answered = [r for r in replies if r.status == 200]
    reviews = [r for r in answered if r.path == REVIEWS_PATH]
    missed = {
        "productpage": bool(replies) and not any(r.path == PAGE_PATH for r in answered),
        "details": any(r.details is False for r in answered) and not any(r.details for r in answered),
        "ratings": any(r.ratings_error for r in reviews)
        and not any(r.version in RATED and not r.ratings_error for r in reviews),
    }
    found = [
        f"{w.name} on {cluster} never answered"
        for w in bookinfo.placed(spec, cluster)
        if (not served.get(w.version) if w.service == "reviews" else missed[w.service])
    ]
    unrated = sorted({r.version or "?" for r in reviews if r.cluster == cluster and r.ratings_error})
    return found + [f"reviews-{v} on {cluster} answered without ratings" for v in unrated]


def _traffic(spec: MeshSpec, cluster: str, traffic: _Traffic) -> Broke | None:
    """Why the cluster's workloads did not all answer: the first layer with a cause about it."""
    missing = _unanswered(spec, cluster, traffic)
    if not missing:
        return None
    if traffic.report.address is None:
        return "gateway", NO_INGRESS
    about = [f for f in traffic.causes if cluster in f.clusters]
    for layer in LAYERS:
        found = [f for f in about if f.layer == layer]
        if found:
            return layer, _because(found, cluster)
    return "endpoints", "; ".join(missing)


def _because(found: list[Finding], cluster: str) -> str:
    """The causes in one line; firewall gaps into the cluster as one sentence of their ranges."""
    into = [f.source for f in found if f.layer == "firewall" and f.target == cluster]
    if into:
        return firewall_gap(into, cluster)
    return "; ".join(dict.fromkeys(f.text for f in found))


def link_rows(links: list[Link]) -> list[dict[str, str]]:
    """One row per link, for the Prefect table artifact (read back by `links_of`)."""
    return [
        {
            "primary": k.primary,
            "cluster": k.cluster,
            "ok": "yes" if k.ok else "no",
            "layer": k.layer,
            "reason": k.reason,
            "api": k.api,
            "same root": _unknown(k.same_root),
            "synced": k.synced,
            "served": _unknown(k.served),
            "p50 ms": _unknown(k.latency_ms.p50),
            "p95 ms": _unknown(k.latency_ms.p95),
        }
        for k in links
    ]


def _unknown(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def links_of(rows: list[dict[str, str]]) -> list[Link]:
    """The links of a table published with `link_rows`; what a row lacks stays unknown."""
    return [
        Link(
            primary=row.get("primary", "?"),
            cluster=row.get("cluster", "?"),
            ok=row.get("ok") == "yes",
            layer=row.get("layer", ""),
            reason=row.get("reason", ""),
            api=row.get("api", ""),
            same_root={"yes": True, "no": False}.get(row.get("same root", "-")),
            synced=row.get("synced", ""),
            served=_int(row.get("served")),
            latency_ms=Latency(p50=_float(row.get("p50 ms")), p95=_float(row.get("p95 ms"))),
        )
        for row in rows
        if isinstance(row, dict) and row.get("primary", "-") != "-"  # "-": the table of a mesh without links
    ]


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "-") else None
    except (TypeError, ValueError):
        return None


def _int(text: str | None) -> int | None:
    number = _float(text)
    return None if number is None else int(number)
