"""Bookinfo in one cluster: the ingress gateway where productpage runs, then the sample's objects.

One task per cluster, independent of the others, so a flow runs them in parallel. Everything is
idempotent: the ingress gateway is a Helm release (meshwright.helm.ensure_release makes no revision when
nothing changed), the manifests go in with server-side apply, and readiness is the existing
rollout watch. Manifests come from meshwright.bookinfo (pure). Pods that run without a sidecar (started while
the namespace lacked its label) are replaced with a rollout restart, as an operator would.
"""

from __future__ import annotations

import time

import kubernetes.client
from prefect import get_run_logger, task

from meshwright import bookinfo, clients, kube, naming
from meshwright.clients import MeshwrightTarget
from meshwright.errors import NotReady, OperationFailed
from meshwright.models import BookinfoResult, ChartRef, ClusterAccess
from meshwright.observe import bookinfo_deployments
from meshwright.spec import MeshSpec
from meshwright.translate import kube_call
from tasks.common import ONCE_PER_RUN, RETRYING, Clock
from tasks.istio import ensure_helm_release

STEP = "deploy_bookinfo"


def _ensure_ingress(target: MeshwrightTarget, access: ClusterAccess, charts: list[ChartRef]) -> str:
    ref = next(r for r in charts if r.chart == "gateway")
    values = bookinfo.ingress_values()
    return ensure_helm_release(target, access, ref, naming.INGRESS_RELEASE, values, step=STEP).action


def _wait(
    client: kubernetes.client.ApiClient, namespace: str, name: str, *, cluster: str, timeout: float
) -> None:
    try:
        kube.wait_rollout(client, namespace, name, cluster=cluster, step=STEP, timeout=timeout)
    except NotReady as e:  # pods refused by the injector do not come by retrying the apply
        raise OperationFailed(
            f"{namespace}/{name}: {e.message}; see `kubectl -n {namespace} describe replicaset -l "
            f"app={name.rsplit('-', 1)[0]}` (a refused sidecar injection shows as FailedCreate)",
            cluster=cluster,
            step=STEP,
        ) from None


def _restart_without_sidecar(
    client: kubernetes.client.ApiClient, namespace: str, workloads: list[bookinfo.Workload], *, cluster: str
) -> list[str]:
    """`kubectl rollout restart` for each placed Deployment with a pod that has no istio-proxy.

    Injection happens only when a pod is created: pods started while the namespace lacked its label
    (or while istiod was unreachable and the webhook ignored) keep running without a sidecar until
    they are replaced, and a mesh without their sidecars cannot reach them.
    """
    core, apps = kubernetes.client.CoreV1Api(client), kubernetes.client.AppsV1Api(client)
    with kube_call(cluster=cluster, step=STEP, what=f"deployments in {namespace}"):
        pods = core.list_namespaced_pod(namespace).items
        bare = {
            (p.metadata.labels or {}).get("app", "") + "-" + (p.metadata.labels or {}).get("version", "")
            for p in pods
            if p.metadata and not any(c.name == "istio-proxy" for c in (p.spec.containers if p.spec else []))
        }
        restarted = [w.name for w in workloads if w.name in bare]
        stamp = {"kubectl.kubernetes.io/restartedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        for name in restarted:
            body = {"spec": {"template": {"metadata": {"annotations": stamp}}}}
            apps.patch_namespaced_deployment(name, namespace, body)
    return restarted


def _remove_unplaced(
    client: kubernetes.client.ApiClient, namespace: str, placed: list[bookinfo.Workload], *, cluster: str
) -> list[str]:
    """Delete the Bookinfo Deployments this cluster runs that the spec now places elsewhere (or
    nowhere); their Services stay, as in every cluster of the mesh."""
    keep = {w.name for w in placed}
    gone = [n for n in bookinfo_deployments(client, namespace, cluster=cluster, step=STEP) if n not in keep]
    apps = kubernetes.client.AppsV1Api(client)
    for name in gone:
        with kube_call(cluster=cluster, step=STEP, what=f"deployment/{name}"):
            apps.delete_namespaced_deployment(name, namespace)
    return gone


@task(task_run_name="deploy_bookinfo[{access.name}]", **ONCE_PER_RUN, **RETRYING)
def deploy_bookinfo(
    spec: MeshSpec, access: ClusterAccess, charts: list[ChartRef], *, target: MeshwrightTarget
) -> BookinfoResult:
    """Bookinfo's part in one cluster: ingress gateway (productpage's cluster), objects, rollouts.

    Args:
        spec: the validated mesh spec, with a `bookinfo` section.
        access: the cluster, with Istio installed (its pods need the injector).
        charts: what `preflight_charts` resolved (the `gateway` chart is used).
        target: where the mesh is built.
    """
    assert spec.bookinfo is not None
    clock, ns = Clock(STEP, access.name), spec.bookinfo.namespace
    cloud = clients.cloud(target)
    timeout, client = cloud.waits.ready, cloud.kube_for(access)
    ingress = None
    if access.name in bookinfo.entry_clusters(spec):
        ingress = _ensure_ingress(target, access, charts)
        _wait(client, naming.ISTIO_NAMESPACE, naming.INGRESS_RELEASE, cluster=access.name, timeout=timeout)
    applied = kube.apply(client, bookinfo.manifests(spec, access.name), cluster=access.name, step=STEP)
    removed = _remove_unplaced(client, ns, bookinfo.placed(spec, access.name), cluster=access.name)
    for w in bookinfo.placed(spec, access.name):
        _wait(client, ns, w.name, cluster=access.name, timeout=timeout)
    restarted = _restart_without_sidecar(client, ns, bookinfo.placed(spec, access.name), cluster=access.name)
    for name in restarted:
        _wait(client, ns, name, cluster=access.name, timeout=timeout)
    get_run_logger().info(
        "bookinfo in %s: %d object(s) applied, %s ready%s%s",
        access.name,
        len(applied),
        ", ".join(w.name for w in bookinfo.placed(spec, access.name)) or "no workload",
        f", ingress gateway {ingress}" if ingress else "",
        f", removed {', '.join(removed)} (placed elsewhere now)" if removed else "",
    )
    return BookinfoResult(
        cluster=access.name,
        applied=applied,
        ingress=ingress,
        restarted=restarted,
        removed=removed,
        timing=clock.done(),
    )
