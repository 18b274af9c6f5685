"""Checks of a mesh's control plane, as an operator would make them: pure, from observations.

The tasks observe each cluster (istiod's `/debug/clusterz`, a diagnosis of each remote secret, the
`cacerts` root fingerprint, where a remote's istiod Service points, the east-west gateway's
address); this module turns those observations into a report and one line per problem. It never
sees key material: roots are compared by SHA-256 fingerprint, remote secrets by a diagnosis string.

istiod's clusterz is read as `istioctl remote-clusters` reads it: through a port-forward to an
istiod pod (istiod answers its debug endpoints only to local or authenticated callers, and the API
server's service proxy drops the caller's credentials, so that path answers 401). The user running
`meshwright verify` needs, in every cluster:

- `list` on `pods` and `get` + `create` on `pods/portforward` in istio-system (clusterz; a WebSocket
  upgrade needs `create` too since Kubernetes 1.35);
- `get` on `secrets` in istio-system (the `cacerts` root and, on primaries, the remote secrets
  that are diagnosed when a cluster is not synced);
- `get`/`list` on `services` and `endpointslices.discovery.k8s.io` in istio-system;
- with Bookinfo, for the mTLS proof (meshwright.mtls): `create`, `get`, `list`, `watch` and `delete`
  on `pods` in Bookinfo's namespace, `list` on `peerauthentications.security.istio.io` there and in
  istio-system.

`roles/container.developer` (or a Role with those rules bound to the user) is enough.

Bookinfo's traffic is checked in meshwright.traffic; its report rides along in `VerifyReport.traffic`,
and meshwright.links gives each (primary, cluster) pair its verdict in `VerifyReport.links`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field, computed_field

from meshwright import drills as drill_checks
from meshwright import naming
from meshwright.drills import DrillResult
from meshwright.errors import PermanentError
from meshwright.istio_values import needs_eastwest
from meshwright.mtls import MtlsReport, mtls_failure
from meshwright.remote_secrets import pairs
from meshwright.spec import MeshSpec
from meshwright.traffic import TrafficReport, traffic_failure

SYNCED = "synced"
NOT_LISTED = "not listed"


class Observation(BaseModel):
    """What one cluster shows of the control plane. Plain facts; nothing secret."""

    cluster: str
    error: str | None = None  # why the cluster could not be observed at all
    clusterz: dict[str, str] | None = None  # primaries: cluster id -> syncStatus
    clusterz_error: str | None = None
    secrets: dict[str, str] = Field(default_factory=dict)  # primaries: source -> diagnosis ("ok" or why not)
    root: str | None = None  # SHA-256 fingerprint of cacerts' root-cert.pem; None: no cacerts
    istiod_addresses: list[str] | None = None  # remotes: where Service istiod points
    eastwest_addresses: list[str] | None = None  # None: no east-west gateway Service


class PrimaryTable(BaseModel):
    primary: str
    clusters: dict[str, str]  # cluster -> status as clusterz says (or "not listed")


class Latency(BaseModel):
    """Milliseconds the counted requests through the ingress took, of those a cluster served."""

    p50: float | None = None
    p95: float | None = None


class Link(BaseModel):
    """One (primary, cluster) pair the mesh needs, checked end to end (meshwright.links)."""

    primary: str
    cluster: str
    ok: bool
    layer: str = ""  # what broke, one of links.LAYERS; empty when ok
    reason: str = ""  # why, in a person's words; empty when ok
    api: str = ""  # istiod reaches the cluster's API with its remote secret: "ok", or why not
    same_root: bool | None = None  # the cluster's cacerts root is the primary's (None: not known)
    synced: str = ""  # the cluster's syncStatus in the primary's istiod (clusterz)
    served: int | None = None  # counted requests through the ingress it took part in; None: not checked
    latency_ms: Latency = Field(default_factory=Latency)


class VerifyReport(BaseModel):
    mesh: str
    tables: list[PrimaryTable]
    roots: dict[str, str]  # cluster -> short root fingerprint ("none" without cacerts)
    problems: list[str]  # the control plane's
    traffic: TrafficReport | None = None  # with a bookinfo section: what went through the ingress
    mtls: MtlsReport | None = None  # with a bookinfo section: its PeerAuthentication, proven
    links: list[Link] = Field(default_factory=list)
    drills: list[DrillResult] = Field(default_factory=list)  # what `verify --drill` did and found

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """The control plane, the traffic through the ingress and mTLS are whole, and every drill
        held (in JSON too)."""
        whole = (self.traffic is None or self.traffic.ok) and (self.mtls is None or self.mtls.ok)
        return not self.problems and whole and all(d.ok for d in self.drills)


class ControlPlaneBroken(PermanentError):
    """The mesh's control plane is not whole; the message has one line per problem."""


def refused_auth(user: Any) -> str | None:
    """Why istiod refuses a remote secret's kubeconfig for its user, naming what the user runs or
    reads; None when istiod accepts it. istiod loads remote kubeconfigs as untrusted and refuses a
    user that would run code or read its files, in this order (istio/istio pkg/kube/util.go
    `sanitizeKubeConfig`); such a kubeconfig never becomes a cluster, whatever its token."""
    if not isinstance(user, dict):
        return None
    provider = user.get("auth-provider")
    name = provider.get("name") if isinstance(provider, dict) else None
    if name and name != "oidc":
        return f"istiod refuses its auth provider {name} (auth provider {name} is not allowed); use a token"
    for key, field in (
        ("client-key", "clientKey"),
        ("client-certificate", "clientCertificate"),
        ("tokenFile", "tokenFile"),
    ):
        if user.get(key):
            return f"istiod refuses a user that reads {key} {user[key]} from a file ({field} is not allowed); use a token"
    plugin = user.get("exec")
    if plugin:
        command = plugin.get("command") if isinstance(plugin, dict) else None
        return f"istiod refuses a user that runs the exec plugin {command or '(no command)'} (exec is not allowed); use a token"
    return None


def check(spec: MeshSpec, seen: dict[str, Observation]) -> VerifyReport:
    """Every check over every cluster; all problems at once."""
    problems = [f"{c}: {o.error}" for c, o in seen.items() if o.error]
    tables, sync_problems = _sync(spec, seen)
    problems += sync_problems + _roots(spec, seen) + _eastwest(spec, seen) + _remote_istiod(spec, seen)
    roots = {
        c.name: (seen[c.name].root or "none")[:16] if c.name in seen else "unknown" for c in spec.clusters
    }
    return VerifyReport(mesh=spec.name, tables=tables, roots=roots, problems=problems)


def _sync(spec: MeshSpec, seen: dict[str, Observation]) -> tuple[list[PrimaryTable], list[str]]:
    tables, problems = [], []
    for p in spec.primaries:
        o = seen.get(p.name)
        if o is None or o.error:
            continue
        if o.clusterz is None:
            problems.append(f"{p.name}: cannot read istiod's clusterz: {o.clusterz_error}")
            continue
        sources = [s for s, dst in pairs(spec) if dst == p.name]
        row = {s: o.clusterz.get(s, NOT_LISTED) for s in sources}
        tables.append(PrimaryTable(primary=p.name, clusters=row))
        for source, status in row.items():
            if status != SYNCED:
                why = o.secrets.get(source, "not diagnosed")
                problems.append(
                    f"{p.name} does not see {source}: {status} (remote secret {naming.remote_secret_name(source)}: {why})"
                )
    return tables, problems


def _roots(spec: MeshSpec, seen: dict[str, Observation]) -> list[str]:
    found = {c: o.root for c, o in seen.items() if not o.error}
    problems = [no_cacerts(c) for c, r in found.items() if r is None]
    counted = Counter(r for r in found.values() if r)
    if len(counted) <= 1:
        return problems
    mesh_root = counted.most_common(1)[0][0]
    return problems + [
        f"{c}: cacerts root {r[:16]} differs from the mesh's root {mesh_root[:16]}"
        for c, r in found.items()
        if r and r != mesh_root
    ]


def no_cacerts(cluster: str) -> str:
    return f"{cluster}: no {naming.CACERTS_SECRET} secret in {naming.ISTIO_NAMESPACE}"


def _eastwest(spec: MeshSpec, seen: dict[str, Observation]) -> list[str]:
    found = (eastwest_problem(spec, c.name, seen.get(c.name)) for c in spec.clusters)
    return [p for p in found if p]


def eastwest_problem(spec: MeshSpec, cluster: str, o: Observation | None) -> str | None:
    """What is wrong with the cluster's east-west gateway, where it needs one; None when nothing is."""
    if o is None or o.error or not needs_eastwest(spec, spec.cluster(cluster)):
        return None
    if o.eastwest_addresses is None:
        return f"{cluster}: no Service {naming.EASTWEST_RELEASE} in {naming.ISTIO_NAMESPACE}"
    if not o.eastwest_addresses:
        return f"{cluster}: east-west gateway {naming.EASTWEST_RELEASE} has no load-balancer address"
    return None


def _remote_istiod(spec: MeshSpec, seen: dict[str, Observation]) -> list[str]:
    found = (
        istiod_problem(r.name, seen.get(r.name), r.primary or "", seen.get(r.primary or ""))
        for r in spec.remotes
    )
    return [p for p in found if p]


def istiod_problem(remote: str, o: Observation | None, primary: str, p: Observation | None) -> str | None:
    """Where a remote's Service istiod leads, when that is not its primary's east-west gateway."""
    if o is None or o.error or p is None or p.error or not p.eastwest_addresses:
        return None  # nothing to compare against: reported by the other checks
    got = o.istiod_addresses or []
    if set(got) & set(p.eastwest_addresses):
        return None
    return (
        f"{remote}: Service istiod points to {', '.join(got) or 'nothing'}, "
        f"not to {primary}'s east-west gateway {', '.join(p.eastwest_addresses)}"
    )


def failure(report: VerifyReport) -> ControlPlaneBroken:
    lines = "\n".join(f"  {p}" for p in report.problems)
    return ControlPlaneBroken(
        f"the control plane of mesh {report.mesh} has {len(report.problems)} problem(s):\n{lines}",
        step="verify",
    )


def broken(report: VerifyReport) -> PermanentError | None:
    """The error a failed verification raises: the control plane's lines with the traffic's, mTLS's
    and the drills' joined, or the first of those that failed with the rest; None when whole."""
    traffic = traffic_failure(report.traffic) if report.traffic and not report.traffic.ok else None
    mtls = mtls_failure(report.mtls) if report.mtls and not report.mtls.ok else None
    drilled = drill_checks.failure(report.drills)
    found: list[PermanentError] = [e for e in (traffic, mtls, drilled) if e is not None]
    if report.problems:
        found.insert(0, failure(report))
    if not found:
        return None
    found[0].message += "".join("\n" + e.message for e in found[1:])
    return found[0]


def table_rows(report: VerifyReport) -> list[dict[str, str]]:
    """One row per (primary, cluster it should see), for the Prefect table artifact."""
    return [
        {"primary": t.primary, "cluster": c, "status": s, "root": report.roots.get(c, "")}
        for t in report.tables
        for c, s in t.clusters.items()
    ]
