"""What the workflow would do for a spec, computed without touching any network.

The stages follow the mission's DAG; inside a stage the steps are independent and run in
parallel. `meshwright plan` renders this; the flows follow the same order.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, Field

from meshwright import bookinfo, naming
from meshwright.spec import ClusterSpec, MeshSpec

NOT_YET = "(not yet implemented)"
# Stages `plan` shows that no flow runs yet; a stage leaves this set when a flow runs it.
NOT_YET_RUN = frozenset({"trust", "istio-primaries", "istio-remotes", "remote-secrets", "bookinfo", "verify"})


class Resource(BaseModel):
    """One thing the workflow creates in the cloud, in a cluster or on disk."""

    kind: str
    name: str
    cluster: str | None = None
    details: dict[str, str] = Field(default_factory=dict)


class Step(BaseModel):
    name: str
    cluster: str | None = None
    resources: list[Resource] = Field(default_factory=list)


class Stage(BaseModel):
    """Steps that may run together; `implemented` is False while no flow runs the stage yet."""

    name: str
    description: str
    parallel: bool
    steps: list[Step]
    implemented: bool = True


class Plan(BaseModel):
    mesh: str
    target: str
    project: str
    topology: list[str]
    stages: list[Stage]

    def resources(self) -> Iterator[Resource]:
        for stage in self.stages:
            for step in stage.steps:
                yield from step.resources


def build_plan(spec: MeshSpec) -> Plan:
    """The ordered stages of `up` for this spec, each with the resources it creates."""
    stages = [
        _stage(
            "create-clusters", "create the GKE clusters", [_create_cluster(spec, c) for c in spec.clusters]
        ),
        _stage("wait-clusters", "wait until every cluster is RUNNING", _waits(spec)),
        _stage("firewall", "let the pod ranges of all clusters reach each other", [_firewall(spec)]),
        _stage("kubeconfig", "write a kubeconfig with one context per cluster", [_kubeconfig(spec)]),
        _stage("trust", "shared root CA: istio-system and cacerts in every cluster", _trust(spec)),
        _stage("istio-primaries", "control planes on the primaries", _istio(spec, spec.primaries)),
        _stage("istio-remotes", "remote profile on the remotes", _istio(spec, spec.remotes)),
        _stage("remote-secrets", "let every primary read the other clusters", _remote_secrets(spec)),
    ]
    if spec.bookinfo:
        stages += [
            _stage("bookinfo", "deploy Bookinfo split across clusters", _bookinfo(spec)),
            _stage("verify", "prove that traffic crosses clusters", [Step(name="verify_cross_cluster")]),
        ]
    return Plan(
        mesh=spec.name,
        target=spec.target.value,
        project=spec.project,
        topology=spec.topology,
        stages=[s for s in stages if s.steps],
    )


def _stage(name: str, description: str, steps: list[Step]) -> Stage:
    return Stage(
        name=name,
        description=description,
        parallel=len(steps) > 1,
        steps=steps,
        implemented=name not in NOT_YET_RUN,
    )


def _waits(spec: MeshSpec) -> list[Step]:
    return [Step(name="wait_cluster", cluster=c.name) for c in spec.clusters]


def _create_cluster(spec: MeshSpec, c: ClusterSpec) -> Step:
    labels = naming.resource_labels(spec, c, expires=None)
    if spec.ttl:
        labels[naming.EXPIRES_LABEL] = f"<now + {spec.ttl}>"
    details = {
        "location": c.location,
        "role": c.role.value,
        "nodes": f"{c.nodes} x {c.machine_type}",
        "pod_cidr": c.pod_cidr or "allocated by GKE",
        "network": spec.network,
        "node_tag": naming.node_tag(spec.name),
        "labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
    }
    cluster = Resource(kind="gke-cluster", name=c.name, details=details)
    return Step(name="create_cluster", cluster=c.name, resources=[cluster])


def _firewall(spec: MeshSpec) -> Step:
    rule = Resource(
        kind="firewall-rule",
        name=naming.firewall_name(spec.name),
        details={
            "network": spec.network,
            "direction": "INGRESS",
            "priority": str(naming.FIREWALL_PRIORITY),
            "source_ranges": "pod CIDRs of " + ", ".join(c.name for c in spec.clusters),
            "target_tag": naming.node_tag(spec.name),
            "allow": ", ".join(naming.FIREWALL_PROTOCOLS),
        },
    )
    return Step(name="ensure_firewall", resources=[rule])


def _kubeconfig(spec: MeshSpec) -> Step:
    contexts = ", ".join(c.name for c in spec.clusters)
    f = Resource(
        kind="kubeconfig",
        name=str(naming.default_kubeconfig(spec.name)),
        details={"contexts": contexts, "mode": "0600"},
    )
    return Step(name="write_kubeconfig", resources=[f])


def _trust(spec: MeshSpec) -> list[Step]:
    steps = []
    for c in spec.clusters:
        ns = {naming.NETWORK_LABEL: spec.istio_network(c)} if spec.multi_network else {}
        if c.primary:
            ns[naming.CONTROL_PLANE_CLUSTERS_ANNOTATION] = c.primary
        steps.append(
            Step(
                name="install_cacerts",
                cluster=c.name,
                resources=[
                    Resource(kind="namespace", name=naming.ISTIO_NAMESPACE, cluster=c.name, details=ns),
                    Resource(
                        kind="secret",
                        name=naming.CACERTS_SECRET,
                        cluster=c.name,
                        details={
                            "namespace": naming.ISTIO_NAMESPACE,
                            "intermediate": f"CN=Intermediate CA, L={c.name}",
                        },
                    ),
                ],
            )
        )
    return steps


def needs_eastwest_gateway(spec: MeshSpec, c: ClusterSpec) -> bool:
    """A primary with remotes exposes istiod through it; in multi-network meshes every cluster has one."""
    serves_remotes = any(r.primary == c.name for r in spec.remotes)
    return spec.multi_network or (c.primary is None and serves_remotes)


def _istio(spec: MeshSpec, clusters: list[ClusterSpec]) -> list[Step]:
    return [Step(name="install_istio", cluster=c.name, resources=_releases(spec, c)) for c in clusters]


def _releases(spec: MeshSpec, c: ClusterSpec) -> list[Resource]:
    profile = "remote" if c.primary else "default"
    common = {"namespace": naming.ISTIO_NAMESPACE, "version": spec.istio.version, "profile": profile}
    network = spec.istio_network(c)
    charts = {
        naming.BASE_RELEASE: {"chart": "base"},
        naming.ISTIOD_RELEASE: {"chart": "istiod", "clusterName": c.name, "network": network},
    }
    if needs_eastwest_gateway(spec, c):
        charts[naming.EASTWEST_RELEASE] = {"chart": "gateway", "networkGateway": network}
    return [
        Resource(kind="helm-release", name=release, cluster=c.name, details={**common, **extra})
        for release, extra in charts.items()
    ]


def remote_secret_pairs(spec: MeshSpec) -> list[tuple[str, str]]:
    """(source, primary): each cluster's reader secret goes into every primary other than itself."""
    return [(src.name, p.name) for p in spec.primaries for src in spec.clusters if src.name != p.name]


def _remote_secrets(spec: MeshSpec) -> list[Step]:
    return [
        Step(
            name="exchange_remote_secret",
            cluster=primary,
            resources=[
                Resource(
                    kind="secret",
                    name=naming.remote_secret_name(src),
                    cluster=primary,
                    details={
                        "namespace": naming.ISTIO_NAMESPACE,
                        "reads": src,
                        "label": f"{naming.REMOTE_SECRET_LABEL}=true",
                    },
                )
            ],
        )
        for src, primary in remote_secret_pairs(spec)
    ]


def _bookinfo(spec: MeshSpec) -> list[Step]:
    assert spec.bookinfo is not None
    ns = spec.bookinfo.namespace
    steps = []
    for c in spec.clusters:
        workloads = spec.bookinfo.placement.get(c.name, [])
        resources = [
            Resource(kind="namespace", name=ns, cluster=c.name, details={"istio-injection": "enabled"})
        ]
        resources += [
            Resource(
                kind="service", name=s, cluster=c.name, details={"namespace": ns, "port": str(bookinfo.PORT)}
            )
            for s in bookinfo.SERVICES
        ]
        resources += [
            Resource(kind="deployment", name=w, cluster=c.name, details={"namespace": ns}) for w in workloads
        ]
        steps.append(Step(name="deploy_bookinfo", cluster=c.name, resources=resources))
    return steps


def render_text(plan: Plan) -> str:
    """A terraform-plan-like listing: stages in order, what runs in parallel, what gets created."""
    lines = [
        f"Plan for mesh {plan.mesh!r} on {plan.target} (project {plan.project}); "
        f"topology: {' + '.join(plan.topology)}",
        "",
    ]
    for i, stage in enumerate(plan.stages, 1):
        lines += _stage_lines(stage, f"{i}/{len(plan.stages)}")
    total = sum(1 for _ in plan.resources())
    later = sum(1 for s in plan.stages if not s.implemented)
    note = f" ({later} of them {NOT_YET.strip('()')})" if later else ""
    lines += ["", f"{total} resources to create in {len(plan.stages)} stages{note}."]
    return "\n".join(lines)


def _stage_lines(stage: Stage, position: str) -> list[str]:
    mode = f"{len(stage.steps)} in parallel" if stage.parallel else "1 step"
    later = "" if stage.implemented else f" {NOT_YET}"
    lines = [f"Stage {position}: {stage.name} — {stage.description} ({mode}){later}"]
    for step in stage.steps:
        lines.append(f"  {step.name}" + (f" [{step.cluster}]" if step.cluster else ""))
        for r in step.resources:
            details = "  ".join(f"{k}={v}" for k, v in r.details.items())
            lines.append(f"    + {r.kind} {r.name}  {details}".rstrip())
    return lines
