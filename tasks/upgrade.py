"""Istio's canary upgrade, per cluster: what moves a mesh from one istiod revision to the next.

Istio's procedure (istio.io docs/setup/upgrade/canary, its Helm variant, and `istioctl tag set`):
the new revision's istiod runs beside the old one; once its control plane is verified, the revision
tag `default` that namespaces (and a remote's injection path) follow moves to it; workloads and
gateways are restarted so that their sidecars are injected by it; the old revision goes last. Each
task here does one of those steps to one cluster; flows/mesh.py orders them and rolls back.
Values come from meshwright.istio_values (pure).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import kubernetes.client
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from meshwright import clients, helm, istio_values, kube, naming
from meshwright.clients import MeshwrightTarget
from meshwright.errors import OperationFailed
from meshwright.models import ChartRef, ClusterAccess
from meshwright.remote_secrets import pairs
from meshwright.spec import MeshSpec
from meshwright.translate import kube_call
from tasks.common import RETRYING
from tasks.istio import ensure_helm_release, installed_revisions

CLUSTERZ, MONITORING_PORT, SYNCED = "/debug/clusterz", 15014, "synced"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
NS = naming.ISTIO_NAMESPACE
LEGACY_WEBHOOK = "istio-sidecar-injector"
NEVER_MATCH = {"matchLabels": {"istio.io/deactivated": "never-match"}}  # istio pkg/kube/util NeverMatch
TAG_WEBHOOK = f"istio-revision-tag-{naming.REVISION_TAG}"  # Istio's revision-tags-mwc.yaml
TAG_SERVICE = f"istiod-revision-tag-{naming.REVISION_TAG}"  # and revision-tags-svc.yaml
HELM_OWNER, HELM_POLICY = "meta.helm.sh/release-name", "helm.sh/resource-policy"


def _revision_pod(core: kubernetes.client.CoreV1Api, rev: str) -> str | None:
    selector = f"app=istiod,istio.io/rev={rev or 'default'}"
    for pod in core.list_namespaced_pod(naming.ISTIO_NAMESPACE, label_selector=selector).items:
        status: Any = pod.status
        ready = any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []))
        if ready and status.phase == "Running" and pod.metadata:
            return str(pod.metadata.name)
    return None


def _clusterz(client: Any, access: ClusterAccess, rev: str, *, step: str) -> dict[str, str]:
    with kube_call(cluster=access.name, step=step, what=f"istiod {rev} pods"):
        pod = _revision_pod(kubernetes.client.CoreV1Api(client), rev)
    if pod is None:
        return {}
    status, body = kube.forward_get(
        client, naming.ISTIO_NAMESPACE, pod, MONITORING_PORT, CLUSTERZ, cluster=access.name, step=step,
        what=f"istiod {rev}'s clusterz",
    )  # fmt: skip
    entries = json.loads(body or b"[]") if status == 200 else []
    return {str(e.get("id")): str(e.get("syncStatus")) for e in entries if isinstance(e, dict)}


@task(task_run_name="check_revision_{rev}[{access.name}]", cache_policy=NO_CACHE, **RETRYING)
def check_revision(
    spec: MeshSpec, access: ClusterAccess, rev: str, *, target: MeshwrightTarget
) -> dict[str, str]:
    """Wait until revision `rev`'s istiod in this primary has synced itself and every remote it reads
    (its `/debug/clusterz`, as `istioctl remote-clusters --revision` reads it); fail naming the others.

    Args:
        spec: the validated mesh spec.
        access: a primary.
        rev: the revision to check.
        target: where the mesh is built.
    """
    step, cloud = f"check_revision_{rev}", clients.cloud(target)
    wanted = {access.name, *(s for s, p in pairs(spec) if p == access.name)}
    deadline, seen = time.monotonic() + cloud.waits.converge, {}
    client = cloud.kube_for(access)
    while time.monotonic() < deadline:
        seen = _clusterz(client, access, rev, step=step)
        if all(seen.get(c) == SYNCED for c in wanted):
            return seen
        time.sleep(0.2)
    behind = ", ".join(f"{c} {seen.get(c, 'absent')}" for c in sorted(wanted) if seen.get(c) != SYNCED)
    raise OperationFailed(
        f"istiod revision {rev or 'default'} has not synced: {behind}", cluster=access.name, step=step
    )


@task(task_run_name="move_revision_tag[{access.name}]", cache_policy=NO_CACHE, **RETRYING)
def move_revision_tag(
    spec: MeshSpec,
    access: ClusterAccess,
    charts: list[ChartRef],
    to: str,
    *,
    target: MeshwrightTarget,
    remote_pilot_address: str | None = None,
) -> str:
    """Move the revision tag `default` onto revision `to`: off every other istiod release, then onto
    `to`'s (each at the chart version it runs), as `istioctl tag set default --revision <to>
    --overwrite` does with its webhooks.

    Args:
        spec: the validated mesh spec.
        access: the cluster.
        charts: what `preflight_charts` resolved (the istiod chart's source).
        to: the revision that takes the tag.
        target: where the mesh is built.
        remote_pilot_address: a remote's primary's east-west gateway address.
    """
    step, c = "move_revision_tag", spec.cluster(access.name)
    installed = installed_revisions(target, access, step=step)
    source = next(r for r in charts if r.chart == "istiod")
    others = [r for r in installed if r != to]
    # Handed over: onto `to` first, in place. Otherwise off the others first (helm owns an object once).
    order = (
        [to, *others] if _hand_over_tag(clients.cloud(target).kube_for(access), access, to) else [*others, to]
    )
    for rev in order:
        # the unrevisioned istiod's own webhook is the tag "default" (istio-injection=enabled) already
        tagged = rev == to and rev != ""
        plan = istio_values.release(
            spec, c, naming.ISTIOD_RELEASE, remote_pilot_address=remote_pilot_address, rev=rev, tagged=tagged
        )
        ref = source.model_copy(update={"version": installed[rev]})
        ensure_helm_release(target, access, ref, plan.name, plan.values, step=step)
        if rev == "" and to == "":
            _restore_legacy_webhook(target, access, plan.name)
    if "" in installed and to != "":
        _deactivate_legacy_webhook(clients.cloud(target).kube_for(access), access)
    get_run_logger().info("tag %s in %s -> revision %s", naming.REVISION_TAG, access.name, to)
    return to


def _hand_over_tag(client: Any, access: ClusterAccess, to: str) -> bool:
    """Give the tag's objects (its MutatingWebhookConfiguration and Service) that another revision's
    release holds to `to`'s release, as they are, so that the tag never goes missing while it moves.

    `istioctl tag set --overwrite` rewrites the webhook in place; with Helm the old release would
    delete it and the new one create it, and a pod created in between is not injected. So: the
    objects' owner annotations name `to`'s release, which then adopts them and rewrites them in one
    update (Helm adopts an object whose meta.helm.sh annotations name the release, helm/helm
    pkg/action/validate.go existingResourceConflict), and `helm.sh/resource-policy: keep` makes the
    old release's upgrade leave them instead of deleting them (helm/helm pkg/kube/client.go Update:
    "Skipping delete ... due to annotation"). False when there is nothing to hand over."""
    if not to:
        return False  # the unrevisioned istiod's own injector is the tag (see _restore_legacy_webhook)
    release, handed = naming.istiod_release(to), False
    hooks, core = kubernetes.client.AdmissionregistrationV1Api(client), kubernetes.client.CoreV1Api(client)
    patch = {"metadata": {"annotations": {HELM_OWNER: release, HELM_POLICY: "keep"}}}
    with kube_call(cluster=access.name, step="move_revision_tag", what=f"revision tag {naming.REVISION_TAG}"):
        webhook = kube.read_or_none(lambda: hooks.read_mutating_webhook_configuration(TAG_WEBHOOK))
        if webhook is not None and _owner(webhook) not in (None, release):
            hooks.patch_mutating_webhook_configuration(TAG_WEBHOOK, patch)
            handed = True
        service = kube.read_or_none(lambda: core.read_namespaced_service(TAG_SERVICE, NS))
        if service is not None and _owner(service) not in (None, release):
            core.patch_namespaced_service(TAG_SERVICE, NS, patch)
            handed = True
    return handed


def _owner(obj: Any) -> str | None:
    return (obj.metadata.annotations or {}).get(HELM_OWNER)


def _deactivate_legacy_webhook(client: Any, access: ClusterAccess) -> None:
    """The unrevisioned istiod's injector (`istio-sidecar-injector`, which also takes
    istio-injection=enabled) made to match nothing, as `istioctl tag set default` does when a mesh
    leaves a non-revisioned install (istioctl/pkg/tag DeactivateIstioInjectionWebhook, NeverMatch):
    the API server would call it after the tag's webhooks, and its injection would win."""
    _set_selectors(client, access, None)


def _restore_legacy_webhook(target: MeshwrightTarget, access: ClusterAccess, release: str) -> None:
    """The unrevisioned istiod's injector back as its release renders it (helm leaves an object
    edited under an unchanged release alone)."""
    cloud, step = clients.cloud(target), "move_revision_tag"
    with cloud.helm_for(access, step=step) as command:
        rendered = asyncio.run(helm.manifest(command, release, NS))
    legacy = [
        o for o in rendered if o.get("kind") == "MutatingWebhookConfiguration" and _named(o, LEGACY_WEBHOOK)
    ]
    _set_selectors(
        cloud.kube_for(access), access, {h["name"]: h for o in legacy for h in o.get("webhooks") or []}
    )


def _set_selectors(client: Any, access: ClusterAccess, rendered: dict[str, Any] | None) -> None:
    """Replace the selectors of `istio-sidecar-injector`'s webhooks: those `rendered` (by webhook
    name), or NeverMatch when None. A replace, not an apply: the selectors must lose NeverMatch."""
    hooks = kubernetes.client.AdmissionregistrationV1Api(client)
    with kube_call(cluster=access.name, step="move_revision_tag", what=f"webhook {LEGACY_WEBHOOK}"):
        found = kube.read_or_none(lambda: hooks.read_mutating_webhook_configuration(LEGACY_WEBHOOK))
        if found is None:
            return
        body = client.sanitize_for_serialization(found)
        for hook in body.get("webhooks") or []:
            source = (rendered or {}).get(hook["name"], {})
            hook["namespaceSelector"] = source.get("namespaceSelector") if rendered else NEVER_MATCH
            hook["objectSelector"] = source.get("objectSelector") if rendered else NEVER_MATCH
        hooks.replace_mutating_webhook_configuration(LEGACY_WEBHOOK, body)


def _named(obj: dict[str, Any], name: str) -> bool:
    return bool((obj.get("metadata") or {}).get("name") == name)


def _deployments(spec: MeshSpec) -> list[tuple[str, str]]:
    """(namespace, name) of what carries a sidecar: Bookinfo's workloads and the gateways."""
    gateways = [
        (naming.ISTIO_NAMESPACE, naming.EASTWEST_RELEASE),
        (naming.ISTIO_NAMESPACE, naming.INGRESS_RELEASE),
    ]
    ns = spec.bookinfo.namespace if spec.bookinfo else ""
    return gateways + ([(ns, "")] if ns else [])


def _stale(apps: Any, core: Any, namespace: str, name: str, rev: str) -> list[str]:
    """Deployments of `namespace` (`name`, or all) with a pod injected by another revision."""
    found = [
        d for d in apps.list_namespaced_deployment(namespace).items if not name or d.metadata.name == name
    ]
    stale = []
    for d in found:
        selector = ",".join(f"{k}={v}" for k, v in (d.spec.selector.match_labels or {}).items())
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        revs = {(p.metadata.annotations or {}).get("istio.io/rev") for p in pods}
        if revs - {rev, None}:
            stale.append(str(d.metadata.name))
    return stale


@task(task_run_name="restart_workloads[{access.name}]", cache_policy=NO_CACHE, **RETRYING)
def restart_workloads(
    spec: MeshSpec, access: ClusterAccess, rev: str, *, target: MeshwrightTarget
) -> list[str]:
    """`kubectl rollout restart` every Deployment whose pods were injected by another revision than
    `rev` (Bookinfo's, the gateways), and wait for the rollouts: a sidecar's revision changes only
    when its pod is re-created. Returns `namespace/name` of what was restarted.

    Args:
        spec: the validated mesh spec.
        access: the cluster.
        rev: the revision the tag points at now.
        target: where the mesh is built.
    """
    cloud, step = clients.cloud(target), "restart_workloads"
    client = cloud.kube_for(access)
    apps, core = kubernetes.client.AppsV1Api(client), kubernetes.client.CoreV1Api(client)
    stamp = {RESTARTED_AT: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    restarted: list[tuple[str, str]] = []
    with kube_call(cluster=access.name, step=step, what="deployments"):
        for namespace, name in _deployments(spec):
            for found in _stale(apps, core, namespace, name, rev):
                body = {"spec": {"template": {"metadata": {"annotations": stamp}}}}
                apps.patch_namespaced_deployment(found, namespace, body)
                restarted.append((namespace, found))
    for namespace, name in restarted:
        kube.wait_rollout(client, namespace, name, cluster=access.name, step=step, timeout=cloud.waits.ready)
    return [f"{ns}/{name}" for ns, name in restarted]


@task(task_run_name="remove_revision_{rev}[{access.name}]", cache_policy=NO_CACHE, **RETRYING)
def remove_revision(access: ClusterAccess, rev: str, *, target: MeshwrightTarget) -> bool:
    """Uninstall revision `rev`'s istiod release (`istiod-<rev>`, or the unrevisioned `istiod`).

    Args:
        access: the cluster.
        rev: the revision to remove.
        target: where the mesh is built.
    """
    step = f"remove_revision_{rev}"
    with clients.cloud(target).helm_for(access, step=step) as command:
        return asyncio.run(helm.uninstall(command, naming.istiod_release(rev), naming.ISTIO_NAMESPACE))
