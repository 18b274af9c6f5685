"""What the workflow would do for a spec, computed without touching any network.

`up_mesh` runs a DAG: each step starts as soon as the steps it comes `after` are done, so one
cluster's chain never waits for another's unless it needs it. Stages group the steps for reading;
the dependencies are what the flow follows. The decisions (which cluster gets an east-west gateway,
which secret goes where, what Bookinfo puts where) come from the same functions the tasks use.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, Field

from meshwright import bookinfo, istio_values, naming
from meshwright.remote_secrets import pairs
from meshwright.spec import ClusterSpec, MeshSpec


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
    after: list[str] = Field(default_factory=list)  # the steps it waits for, as `name [cluster]`


class Stage(BaseModel):
    """Steps of one kind, for reading; each starts on its own once its `after` steps are done."""

    name: str
    description: str
    parallel: bool
    steps: list[Step]


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
            _stage(
                "verify",
                "every primary sees every other cluster synced, one root everywhere, Bookinfo's "
                "traffic crosses clusters through the ingress",
                [_verify(spec)],
            ),
        ]
    return Plan(
        mesh=spec.name,
        target=spec.target.value,
        project=spec.project,
        topology=spec.topology,
        stages=[s for s in stages if s.steps],
    )


def _stage(name: str, description: str, steps: list[Step]) -> Stage:
    return Stage(name=name, description=description, parallel=len(steps) > 1, steps=steps)


def _ref(step: str, cluster: str | None = None) -> str:
    return f"{step} [{cluster}]" if cluster else step


def _waits(spec: MeshSpec) -> list[Step]:
    return [
        Step(name="wait_cluster", cluster=c.name, after=[_ref("create_cluster", c.name)])
        for c in spec.clusters
    ]


def _create_cluster(spec: MeshSpec, c: ClusterSpec) -> Step:
    labels = naming.resource_labels(spec.name, c.labels, expires=None)
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
    return Step(name="ensure_firewall", resources=[rule], after=_all_running(spec))


def _kubeconfig(spec: MeshSpec) -> Step:
    contexts = ", ".join(c.name for c in spec.clusters)
    f = Resource(
        kind="kubeconfig",
        name=str(naming.default_kubeconfig(spec.name)),
        details={"contexts": contexts, "mode": "0600"},
    )
    return Step(name="write_kubeconfig", resources=[f], after=_all_running(spec))


def _all_running(spec: MeshSpec) -> list[str]:
    return [_ref("wait_cluster", c.name) for c in spec.clusters]


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
                after=[_ref("wait_cluster", c.name)],
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


def _istio(spec: MeshSpec, clusters: list[ClusterSpec]) -> list[Step]:
    return [
        Step(name="install_istio", cluster=c.name, resources=_releases(spec, c), after=_istio_after(c))
        for c in clusters
    ]


def _istio_after(c: ClusterSpec) -> list[str]:
    """Its own cacerts; a remote also its primary's control plane (istiod dials its east-west gateway)."""
    own = [_ref("install_cacerts", c.name)]
    return [*own, _ref("install_istio", c.primary)] if c.primary else own


def _releases(spec: MeshSpec, c: ClusterSpec) -> list[Resource]:
    profile = "remote" if c.primary else "default"
    common = {"namespace": naming.ISTIO_NAMESPACE, "version": spec.istio.version, "profile": profile}
    network = spec.istio_network(c)
    charts = {
        naming.BASE_RELEASE: {"chart": "base"},
        naming.ISTIOD_RELEASE: {"chart": "istiod", "clusterName": c.name, "network": network},
    }
    if istio_values.needs_eastwest(spec, c):
        charts[naming.EASTWEST_RELEASE] = {"chart": "gateway", "networkGateway": network}
    return [
        Resource(kind="helm-release", name=release, cluster=c.name, details={**common, **extra})
        for release, extra in charts.items()
    ]


def _remote_secrets(spec: MeshSpec) -> list[Step]:
    return [
        Step(
            name="exchange_remote_secret",
            cluster=primary,
            after=[_ref("install_istio", src), _ref("install_istio", primary)],
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
        for src, primary in pairs(spec)
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
        if c.name in bookinfo.entry_clusters(spec):
            resources.insert(0, _ingress(c))
        steps.append(
            Step(name="deploy_bookinfo", cluster=c.name, resources=resources, after=_app_after(spec, c))
        )
    return steps


def _ingress(c: ClusterSpec) -> Resource:
    details = {"namespace": naming.ISTIO_NAMESPACE, "chart": "gateway", "selector": "istio=ingressgateway"}
    return Resource(kind="helm-release", name=naming.INGRESS_RELEASE, cluster=c.name, details=details)


def _app_after(spec: MeshSpec, c: ClusterSpec) -> list[str]:
    """Its own control plane and its primary's (the injector), and every secret it takes part in."""
    after = [_ref("install_istio", c.name)] + ([_ref("install_istio", c.primary)] if c.primary else [])
    return after + [
        _ref("exchange_remote_secret", primary) + f" reads {src}"
        for src, primary in pairs(spec)
        if c.name in (src, primary)
    ]


def _verify(spec: MeshSpec) -> Step:
    return Step(
        name="verify", after=["ensure_firewall", *(_ref("deploy_bookinfo", c.name) for c in spec.clusters)]
    )


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
    lines += ["", f"{total} resources to create; each step starts once the steps it comes after are done."]
    return "\n".join(lines)


def _stage_lines(stage: Stage, position: str) -> list[str]:
    mode = f"{len(stage.steps)} in parallel" if stage.parallel else "1 step"
    lines = [f"Stage {position}: {stage.name} — {stage.description} ({mode})"]
    for step in stage.steps:
        after = f"  (after {', '.join(step.after)})" if step.after else ""
        lines.append(f"  {_ref(step.name, step.cluster)}{after}")
        for r in step.resources:
            details = "  ".join(f"{k}={v}" for k, v in r.details.items())
            lines.append(f"    + {r.kind} {r.name}  {details}".rstrip())
    return lines
