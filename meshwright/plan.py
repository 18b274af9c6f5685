"""What the workflow would do for a spec, computed without touching any network.

`up_mesh` runs a DAG: each step starts as soon as the steps it comes `after` are done, so one
cluster's chain never waits for another's unless it needs it. The steps and their dependencies are
meshwright.dag's, which the flow submits as they are; stages only group them for reading. The decisions (which cluster gets an east-west gateway,
which secret goes where, what Bookinfo puts where) come from the same functions the tasks use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pydantic import BaseModel, Field

from meshwright import bookinfo, dag, istio_values, naming
from meshwright.dag import StepKey
from meshwright.spec import ClusterSpec, MeshSpec


class Resource(BaseModel):
    """One thing the workflow creates in the cloud, in a cluster or on disk."""

    kind: str
    name: str
    cluster: str | None = None
    details: dict[str, str] = Field(default_factory=dict)


class Step(BaseModel):
    name: str  # the task it runs: install_istiod, exchange_remote_secret, ...
    key: str  # as its task run is named in the UI: install_istiod[central]
    cluster: str | None = None
    resources: list[Resource] = Field(default_factory=list)
    after: list[str] = Field(default_factory=list)  # the steps it waits for, by key


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


# Stages for reading, in order: (name, description, which steps belong to it).
_STAGES: tuple[tuple[str, str, Callable[[MeshSpec, StepKey], bool]], ...] = (
    ("create-clusters", "create the GKE clusters", lambda s, k: k.kind == dag.CREATE),
    ("wait-clusters", "wait until every cluster is RUNNING", lambda s, k: k.kind == dag.WAIT),
    ("firewall", "let the pod ranges of all clusters reach each other", lambda s, k: k.kind == dag.FIREWALL),
    ("kubeconfig", "write a kubeconfig with one context per cluster", lambda s, k: k.kind == dag.KUBECONFIG),
    (
        "trust",
        "shared root CA: istio-system and cacerts in every cluster",
        lambda s, k: k.kind in (dag.ROOT, dag.NAMESPACE, dag.CACERTS),
    ),
    ("istio-primaries", "control planes on the primaries", lambda s, k: _istio(s, k, primary=True)),
    ("istio-remotes", "remote profile on the remotes", lambda s, k: _istio(s, k, primary=False)),
    (
        "remote-secrets",
        "let every primary read the other clusters (and drop secrets of clusters it no longer reads)",
        lambda s, k: k.kind in (dag.SECRET, dag.PRUNE_SECRETS),
    ),
    ("bookinfo", "deploy Bookinfo split across clusters", lambda s, k: k.kind == dag.BOOKINFO),
    (
        "verify",
        "every primary sees every other cluster synced, one root everywhere, and (with Bookinfo) its "
        "traffic crosses clusters through the ingress",
        lambda s, k: k.kind == dag.VERIFY,
    ),
)
_ISTIO = (dag.INSTALL, dag.READY, dag.ADDRESS, dag.EXPOSE)


def _istio(spec: MeshSpec, key: StepKey, *, primary: bool) -> bool:
    return key.kind in _ISTIO and (spec.cluster(key.cluster or "").primary is None) is primary


def build_plan(spec: MeshSpec) -> Plan:
    """The stages of `up` for this spec: meshwright.dag's steps (the flow's own), grouped for
    reading, each with what it waits for and the resources it creates."""
    steps = dag.steps(spec)
    stages = [
        _stage(name, description, [_step(spec, s) for s in steps if belongs(spec, s.key)])
        for name, description, belongs in _STAGES
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


def _step(spec: MeshSpec, step: dag.Step) -> Step:
    key = step.key
    name = str(key).split("[", 1)[0]
    return Step(
        name=name,
        key=str(key),
        cluster=key.cluster,
        resources=_resources(spec, key),
        after=[str(k) for k in step.after],
    )


def _resources(spec: MeshSpec, key: StepKey) -> list[Resource]:
    """What a step creates; waits and reads create nothing."""
    c = spec.cluster(key.cluster) if key.cluster and key.kind != dag.SECRET else None
    match key.kind:
        case dag.CREATE if c:
            return [_cluster(spec, c)]
        case dag.FIREWALL:
            return [_firewall(spec)]
        case dag.KUBECONFIG:
            return [_kubeconfig(spec)]
        case dag.NAMESPACE if c:
            return [_namespace(spec, c)]
        case dag.CACERTS if c:
            return [_cacerts(c)]
        case dag.INSTALL if c and key.release:
            return [_release(spec, c, key.release)]
        case dag.SECRET if key.cluster:
            return [_remote_secret(key.cluster, p) for p in dag.readers(spec)[key.cluster]]
        case dag.BOOKINFO if c:
            return _bookinfo(spec, c)
    return []


def _cluster(spec: MeshSpec, c: ClusterSpec) -> Resource:
    labels = naming.resource_labels(spec.name, c.labels, expires=None, keep_root=spec.istio.keep_root)
    if spec.ttl:
        labels[naming.EXPIRES_LABEL] = f"<now + {spec.ttl}>"
        labels[naming.TTL_LABEL] = str(spec.ttl_seconds)
    details = {
        "location": c.location,
        "role": c.role.value,
        "nodes": f"{c.nodes_text()} x {c.machine_type}",
        "pod_cidr": c.pod_cidr or "allocated by GKE",
        "network": spec.network,
        "node_tag": naming.node_tag(spec.name),
        "labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
    }
    return Resource(kind="gke-cluster", name=c.name, details=details)


def _firewall(spec: MeshSpec) -> Resource:
    return Resource(
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


def _kubeconfig(spec: MeshSpec) -> Resource:
    contexts = ", ".join(c.name for c in spec.clusters)
    return Resource(
        kind="kubeconfig",
        name=str(naming.default_kubeconfig(spec.name)),
        details={"contexts": contexts, "mode": "0600"},
    )


def _namespace(spec: MeshSpec, c: ClusterSpec) -> Resource:
    manifest = istio_values.namespace(spec, c)["metadata"]
    details = {**(manifest.get("labels") or {}), **(manifest.get("annotations") or {})}
    return Resource(kind="namespace", name=naming.ISTIO_NAMESPACE, cluster=c.name, details=details)


def _cacerts(c: ClusterSpec) -> Resource:
    details = {"namespace": naming.ISTIO_NAMESPACE, "intermediate": f"CN=Intermediate CA, L={c.name}"}
    return Resource(kind="secret", name=naming.CACERTS_SECRET, cluster=c.name, details=details)


def _release(spec: MeshSpec, c: ClusterSpec, release: str) -> Resource:
    network = spec.istio_network(c)
    extra = {
        naming.BASE_RELEASE: {"chart": "base"},
        naming.ISTIOD_RELEASE: {
            "chart": "istiod",
            "clusterName": c.name,
            "network": network,
            "revision": istio_values.revision(spec),
            "revisionTags": naming.REVISION_TAG,
        },
        naming.EASTWEST_RELEASE: {"chart": "gateway", "networkGateway": network},
    }[release]
    profile = "remote" if c.primary else "default"
    common = {"namespace": naming.ISTIO_NAMESPACE, "version": spec.istio.version, "profile": profile}
    name = istio_values.release_name(spec, release)
    return Resource(kind="helm-release", name=name, cluster=c.name, details={**common, **extra})


def _remote_secret(source: str, primary: str) -> Resource:
    return Resource(
        kind="secret",
        name=naming.remote_secret_name(source),
        cluster=primary,
        details={
            "namespace": naming.ISTIO_NAMESPACE,
            "reads": source,
            "label": f"{naming.REMOTE_SECRET_LABEL}=true",
        },
    )


def _bookinfo(spec: MeshSpec, c: ClusterSpec) -> list[Resource]:
    assert spec.bookinfo is not None
    ns = spec.bookinfo.namespace
    resources = [Resource(kind="namespace", name=ns, cluster=c.name, details={"istio-injection": "enabled"})]
    mode = {"namespace": ns, "mtls": spec.bookinfo.mtls.value}
    resources.append(
        Resource(kind="peer-authentication", name=bookinfo.PEER_AUTHENTICATION, cluster=c.name, details=mode)
    )
    resources += [
        Resource(
            kind="service", name=s, cluster=c.name, details={"namespace": ns, "port": str(bookinfo.PORT)}
        )
        for s in bookinfo.SERVICES
    ]
    resources += [
        Resource(kind="deployment", name=w, cluster=c.name, details={"namespace": ns})
        for w in spec.bookinfo.placement.get(c.name, [])
    ]
    if c.name in bookinfo.entry_clusters(spec):
        resources.insert(0, _ingress(c))
    return resources


def _ingress(c: ClusterSpec) -> Resource:
    details = {"namespace": naming.ISTIO_NAMESPACE, "chart": "gateway", "selector": "istio=ingressgateway"}
    return Resource(kind="helm-release", name=naming.INGRESS_RELEASE, cluster=c.name, details=details)


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
        lines.append(f"  {step.key}{after}")
        for r in step.resources:
            details = "  ".join(f"{k}={v}" for k, v in r.details.items())
            lines.append(f"    + {r.kind} {r.name}  {details}".rstrip())
    return lines
