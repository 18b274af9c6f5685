"""The difference between a mesh's spec and what exists of it: what `up` would change.

`Observed` is what meshwright/observe.py read from the world (clusters, the firewall rule's
sources, the remote secrets in each cluster, Bookinfo's workloads, the Helm releases); `diff`
compares it with the spec, by the same rules the flow builds by (meshwright.remote_secrets.pairs,
meshwright.bookinfo.placed, meshwright.dag). Pure: no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from meshwright import bookinfo, dag, istio_values, naming
from meshwright.remote_secrets import pairs
from meshwright.spec import MeshSpec


class ObservedCluster(BaseModel):
    name: str
    location: str
    status: str
    pod_cidr: str = ""
    remote_secrets: list[str] = Field(default_factory=list)  # the clusters it holds a secret for
    workloads: list[str] = Field(default_factory=list)  # Bookinfo deployments it runs
    mtls: str | None = None  # mode of Bookinfo's PeerAuthentication `default` ("" none; None not read)
    releases: dict[str, str] = Field(default_factory=dict)  # release -> chart version
    unread: str = ""  # why its inside could not be read (not RUNNING, unreachable)


class Observed(BaseModel):
    """What exists of one mesh: its labelled clusters and its firewall rule's sources."""

    mesh: str
    clusters: list[ObservedCluster] = Field(default_factory=list)
    firewall_sources: list[str] | None = None  # None: no rule

    def cluster(self, name: str) -> ObservedCluster | None:
        return next((c for c in self.clusters if c.name == name), None)


class Change(BaseModel):
    """One difference: `action` on `what` (`where`, when it lives in a cluster)."""

    action: str  # create, delete, add, remove, install, upgrade, place, set
    kind: str  # cluster, remote-secret, firewall-source, release, workload, peer-authentication
    what: str
    where: str = ""
    detail: str = ""

    def line(self) -> str:
        at = f" in {self.where}" if self.where else ""
        return f"{self.action} {self.kind} {self.what}{at}" + (f" ({self.detail})" if self.detail else "")


class Drift(BaseModel):
    mesh: str
    exists: bool  # False: nothing of the mesh exists; `up` builds it all
    changes: list[Change] = Field(default_factory=list)

    @property
    def deletes(self) -> list[str]:
        """The clusters `up` would delete (only with prune)."""
        return [c.what for c in self.changes if c.kind == "cluster" and c.action == "delete"]


def diff(spec: MeshSpec, observed: Observed) -> Drift:
    """Every change `up` would make to bring `observed` to `spec`, clusters first."""
    changes = [
        *_clusters(spec, observed),
        *_firewall(spec, observed),
        *_releases(spec, observed),
        *_secrets(spec, observed),
        *_workloads(spec, observed),
        *_mtls(spec, observed),
    ]
    return Drift(mesh=spec.name, exists=bool(observed.clusters), changes=changes)


def _clusters(spec: MeshSpec, observed: Observed) -> list[Change]:
    wanted = {c.name for c in spec.clusters}
    found = {c.name for c in observed.clusters}
    created = [
        Change(action="create", kind="cluster", what=c.name, detail=f"{c.location}, {c.role.value}")
        for c in spec.clusters
        if c.name not in found
    ]
    deleted = [
        Change(
            action="delete",
            kind="cluster",
            what=c.name,
            detail=f"{c.location}, not in the spec: needs --prune",
        )
        for c in observed.clusters
        if c.name not in wanted
    ]
    return created + deleted


def _firewall(spec: MeshSpec, observed: Observed) -> list[Change]:
    """Sources by cluster: a new cluster's pod range is GKE's to choose until it exists."""
    rule = naming.firewall_name(spec.name)
    if observed.firewall_sources is None:
        return [
            Change(action="create", kind="firewall-rule", what=rule, detail="pod ranges of every cluster")
        ]
    sources = set(observed.firewall_sources)

    def cidr(name: str, given: str | None) -> str:
        have = observed.cluster(name)
        return (have.pod_cidr if have else "") or given or ""

    wanted = {c.name: cidr(c.name, c.pod_cidr) for c in spec.clusters}
    added = [
        Change(
            action="add", kind="firewall-source", what=r or f"<{name}'s pod range>", where=rule, detail=name
        )
        for name, r in wanted.items()
        if not r or r not in sources
    ]
    removed = [
        Change(action="remove", kind="firewall-source", what=r, where=rule, detail=_owner(observed, r))
        for r in sorted(sources - set(wanted.values()))
    ]
    return added + removed


def _owner(observed: Observed, cidr: str) -> str:
    return next((c.name for c in observed.clusters if c.pod_cidr == cidr), "")


def _releases(spec: MeshSpec, observed: Observed) -> list[Change]:
    changes = []
    for step in dag.steps(spec):
        key = step.key
        have = observed.cluster(key.cluster or "") if key.kind == dag.INSTALL else None
        if key.kind != dag.INSTALL or key.release is None or (have is None or have.unread):
            continue
        if key.release == naming.ISTIOD_RELEASE:
            changes += _istiod(spec, have)
            continue
        version = have.releases.get(key.release)
        if version is None:
            changes.append(Change(action="install", kind="release", what=key.release, where=have.name))
        elif version != spec.istio.version:
            changes.append(
                Change(
                    action="upgrade",
                    kind="release",
                    what=key.release,
                    where=have.name,
                    detail=f"{version} -> {spec.istio.version}",
                )
            )
    return changes


def _istiod(spec: MeshSpec, have: ObservedCluster) -> list[Change]:
    """istiod by revision: a new revision is installed beside the old ones, which go once the tag moved."""
    installed, wanted = istio_values.istiod_revisions(have.releases), istio_values.revision(spec)
    old = sorted(r or "unrevisioned istiod" for r in installed if r != wanted)
    if wanted in installed and not old:
        return []
    what = naming.istiod_release(wanted)
    if not old:
        return [Change(action="install", kind="release", what=what, where=have.name)]
    detail = f"by revision: {', '.join(old)} -> {wanted}; tag {naming.REVISION_TAG} moves, then the old go"
    return [Change(action="upgrade", kind="release", what=what, where=have.name, detail=detail)]


def _secrets(spec: MeshSpec, observed: Observed) -> list[Change]:
    wanted: dict[str, set[str]] = {}
    for source, primary in pairs(spec):
        wanted.setdefault(primary, set()).add(source)
    changes = []
    staying = {k.name for k in spec.clusters}
    ours = staying | {c.name for c in observed.clusters}  # a secret for another cluster is not ours
    for c in observed.clusters:
        if c.unread or c.name not in staying:  # a cluster that goes takes its secrets
            continue
        want, have = wanted.get(c.name, set()), set(c.remote_secrets) & ours
        changes += [
            Change(action="remove", kind="remote-secret", what=naming.remote_secret_name(s), where=c.name)
            for s in sorted(have - want)
        ]
    for primary, sources in wanted.items():
        have_c = observed.cluster(primary)
        have = set(have_c.remote_secrets) if have_c else set()
        changes += [
            Change(action="add", kind="remote-secret", what=naming.remote_secret_name(s), where=primary)
            for s in sorted(sources - have)
        ]
    return changes


def _workloads(spec: MeshSpec, observed: Observed) -> list[Change]:
    changes = []
    for c in spec.clusters:
        have_c = observed.cluster(c.name)
        have = set(have_c.workloads) if have_c and not have_c.unread else set()
        want = {w.name for w in bookinfo.placed(spec, c.name)}
        changes += [
            Change(action="place", kind="workload", what=w, where=c.name) for w in sorted(want - have)
        ]
        changes += [
            Change(action="remove", kind="workload", what=w, where=c.name) for w in sorted(have - want)
        ]
    return changes


def _mtls(spec: MeshSpec, observed: Observed) -> list[Change]:
    """Bookinfo's PeerAuthentication where it is missing or says another mode than the spec's."""
    if spec.bookinfo is None:
        return []
    want, names, changes = spec.bookinfo.mtls.value, {c.name for c in spec.clusters}, []
    for c in observed.clusters:
        if c.mtls is not None and not c.unread and c.mtls != want and c.name in names:
            what = bookinfo.PEER_AUTHENTICATION
            changes.append(Change(action="set", kind="peer-authentication", what=what, where=c.name,
                                  detail=f"{c.mtls or 'none'} -> {want}"))  # fmt: skip
    return changes


def render_text(drift: Drift) -> str:
    """The difference as a person reads it."""
    if not drift.exists:
        return f"mesh {drift.mesh} does not exist yet: up builds all of it"
    if not drift.changes:
        return f"mesh {drift.mesh}: nothing to change"
    lines = [f"mesh {drift.mesh}: {len(drift.changes)} change(s)"]
    lines += [f"  {c.line()}" for c in drift.changes]
    if drift.deletes:
        lines.append(f"  up deletes {', '.join(drift.deletes)} only with --prune (flow parameter prune=true)")
    return "\n".join(lines)
