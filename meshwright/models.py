"""Plain data the tasks return, the flows report and the CLI reads back. Nothing here ever holds a
credential: results may be persisted, and runs' results are read through the Prefect API."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Self

from pydantic import BaseModel, Field

from meshwright.history import Change
from meshwright.spec import MeshSpec
from meshwright.verify import VerifyReport


class Timing(BaseModel):
    """When a step started and ended (unix seconds)."""

    step: str
    cluster: str | None = None
    started: float
    finished: float

    @property
    def seconds(self) -> float:
        return self.finished - self.started


class CreateResult(BaseModel):
    name: str
    location: str
    operation: str | None = None  # None: an existing cluster was adopted
    adopted: bool = False
    timing: Timing


class ClusterAccess(BaseModel):
    """How to reach a RUNNING cluster: public facts only (the CA certificate is public)."""

    name: str
    location: str
    status: str
    endpoint: str
    ca_certificate: str = Field(repr=False)
    pod_cidr: str
    services_cidr: str
    timing: Timing


class ClusterRef(BaseModel):
    name: str
    location: str
    status: str
    labels: dict[str, str] = Field(default_factory=dict)
    created: float | None = None  # unix time GKE created it


class NetworkCheck(BaseModel):
    """The VPC network as preflight found it, and where each cluster's nodes will go."""

    name: str
    mode: str  # "auto" (a subnet per region) or "custom" (only the subnets someone made)
    subnets: dict[str, str]  # cluster -> its subnetwork, or "(made by GKE)" on a custom mode network


class FirewallResult(BaseModel):
    name: str  # the first rule
    rules: list[str] = []  # every rule, when the pod ranges take several (naming.firewall_name)
    network: str
    source_ranges: list[str]
    action: str  # created | patched | adopted (another run made it) | unchanged | deleted | absent
    timing: Timing


class Span(BaseModel):
    """A run's start and end (unix seconds)."""

    started: float
    finished: float

    @property
    def seconds(self) -> float:
        return self.finished - self.started


class ProvisionReport(Span):
    mesh: str
    target: str
    project: str
    clusters: list[ClusterAccess]
    firewall: FirewallResult
    kubeconfig: str
    steps: list[Timing]

    @classmethod
    def of(
        cls,
        spec: MeshSpec,
        *,
        created: Iterable[CreateResult],
        clusters: list[ClusterAccess],
        firewall: FirewallResult,
        kubeconfig: str,
        started: float,
    ) -> Self:
        """The report of what a run built; its steps are the creates, the waits and the firewall."""
        steps = [r.timing for r in created] + [c.timing for c in clusters] + [firewall.timing]
        return cls(
            mesh=spec.name,
            target=spec.target.value,
            project=spec.project,
            clusters=clusters,
            firewall=firewall,
            kubeconfig=kubeconfig,
            steps=steps,
            started=started,
            finished=time.time(),
        )


class LoadBalancerRef(BaseModel):
    """What GKE's service controller made for one LoadBalancer Service: `name` is its forwarding rule
    (in `region`, None when only its `k8s-fw-` rule is left) and `cluster` the cluster it served."""

    name: str
    region: str | None
    service: str
    cluster: str


class TeardownReport(BaseModel):
    mesh: str
    deleted_clusters: list[str]
    firewall: str
    load_balancers: list[str] = Field(default_factory=list)  # forwarding rules seen going before the clusters
    root: str = ""  # what became of the mesh's stored root CA (removed, kept, none stored)
    waited: bool
    seconds: float


class ChartRef(BaseModel):
    """Where one chart comes from, its name and the version that resolved (what gets installed)."""

    chart: str
    ref: str
    repo: str | None = None
    version: str
    name: str = ""  # the chart's own name (Chart.yaml); "" means the same as `chart`


class ReleaseResult(BaseModel):
    """A release after `ensure`: installed, upgraded or unchanged, at which revision and chart version."""

    cluster: str
    name: str
    chart: str
    version: str
    revision: int
    action: str  # installed | upgraded | unchanged | repaired (objects deleted under it re-created)
    timing: Timing | None = None


class RemoteSecretResult(BaseModel):
    """What one exchange did: names, an action and a fingerprint, never the token."""

    source: str
    primary: str
    secret: str
    action: str  # created | updated | unchanged
    fingerprint: str


class RootInfo(BaseModel):
    """The mesh's root, as may be shown: its fingerprint and where it is kept."""

    fingerprint: str
    source: str


class CacertsResult(BaseModel):
    cluster: str
    root_fingerprint: str
    intermediate_fingerprint: str
    action: str  # created | kept
    timing: Timing


class BookinfoResult(BaseModel):
    cluster: str
    applied: list[str]  # "Kind/name" in apply order
    ingress: str | None = None  # the ingress gateway release's action, where there is one
    restarted: list[str] = []  # Deployments restarted because their pods ran without sidecar
    removed: list[str] = []  # Deployments deleted: the spec places them elsewhere now
    timing: Timing


class UpgradeReport(BaseModel):
    """An upgrade by revision as `up` ran it: the revisions ("" is the unrevisioned istiod), each
    phase's times in Istio's canary order, and what the approval point was answered."""

    old: str
    new: str
    phases: list[Timing]
    decision: str | None = None  # the approval's answer, when the spec asked for one


class MeshReport(Span):
    """What `up` built: the clusters (provision report), the root's fingerprint, the charts that
    were installed, each cluster's cacerts and releases, and the gateways' addresses."""

    provision: ProvisionReport
    root: RootInfo
    charts: list[ChartRef]
    cacerts: list[CacertsResult]
    releases: list[ReleaseResult]
    gateways: dict[str, str]
    exposed: dict[str, list[str]]
    remote_secrets: list[RemoteSecretResult] = []
    bookinfo: list[BookinfoResult] = []
    verification: VerifyReport | None = None
    upgrade: UpgradeReport | None = None
    steps: list[Timing]


class PhaseTraffic(BaseModel):
    phase: str
    seconds: float | None  # None: not a phase of the upgrade (requests outside every phase)
    requests: int
    failed: int


class Rehearsal(BaseModel):
    """What the requests saw while the mesh moved from `from_version` to `to_version`."""

    from_version: str
    to_version: str
    requests: int
    failed: int
    failures: list[str]  # the first few, "HH:MM:SS status: first line"
    phases: list[PhaseTraffic]

    @property
    def ok(self) -> bool:
        return self.requests > 0 and self.failed == 0

    def problem(self) -> str | None:
        """Why the rehearsal failed, in one line; None when no request failed."""
        if self.requests == 0:
            return "no request went through the ingress during the upgrade"
        if self.failed == 0:
            return None
        where = ", ".join(f"{p.failed} during {p.phase}" for p in self.phases if p.failed)
        return (
            f"{self.failed} of {self.requests} requests through the ingress failed during the upgrade "
            f"from {self.from_version} to {self.to_version} ({where})"
        )


class SmokeReport(BaseModel):
    """What the smoke test found: the verification's verdict, how long each stage took and what
    changed since the mesh's previous run."""

    mesh: str
    passed: bool
    problems: list[str]
    stages: list[Timing]
    report_key: str
    changes: list[Change] = []
    upgrade: Rehearsal | None = None  # with upgrade_from: the requests seen during the upgrade
