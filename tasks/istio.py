"""Istio's control planes, per cluster, with pyhelm3 driving a real helm.

Each task does one thing to one cluster: the istio-system namespace (network label, control-plane
annotation), one Helm release (no new revision when chart and values are unchanged, pyhelm3's
rule), the Istio objects on a primary's east-west gateway, and the gateway's address that a remote's
istiod points at. Values and manifests come from meshwright.istio_values (pure). Readiness
is waited for with watches here rather than `helm --wait`, which polls every two seconds.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

# kubernetes.client loads its API classes lazily, about a second each on first use; imported here,
# that second is paid once at import instead of inside the first cluster's chain (apps: for
# kube.wait_rollout).
import kubernetes.client.api.apps_v1_api
import kubernetes.watch
from kubernetes.client.api.core_v1_api import CoreV1Api
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from meshwright import clients, helm, helm_storage, istio_values, kube, naming
from meshwright.clients import MeshwrightTarget
from meshwright.errors import NotReady, OperationFailed
from meshwright.models import ChartRef, ClusterAccess, ReleaseResult
from meshwright.spec import MeshSpec
from meshwright.translate import kube_call
from tasks.common import ONCE_PER_RUN, RETRYING, Clock


def chart_source(spec: MeshSpec, *, target: MeshwrightTarget) -> str:
    """The spec's `istio.charts`, else the target's default (Istio's repository, or the bundled charts)."""
    return spec.istio.charts or clients.cloud(target).default_charts


@task(task_run_name="preflight_charts[{spec.name}]", **ONCE_PER_RUN, **RETRYING)
def preflight_charts(spec: MeshSpec, *, target: MeshwrightTarget) -> list[ChartRef]:
    """Check that helm runs and that base, istiod and gateway can be fetched, before anything is created.

    Once per run: a retry of the run installs the chart versions its first attempt resolved (a
    repository may have moved on since), and does not ask for them again.

    Args:
        spec: the validated mesh spec.
        target: where the mesh is built (decides the default chart source).
    """
    source = chart_source(spec, target=target)
    refs = helm.resolve_charts(source, spec.istio.version, hint=clients.cloud(target).charts_hint)
    log = get_run_logger()
    for ref in refs:
        if ref.version != spec.istio.version:
            log.warning(
                "chart %s from %s is version %s, not istio.version %s: installing %s",
                ref.chart, source, ref.version, spec.istio.version, ref.version,
            )  # fmt: skip
    log.info("charts from %s: %s", source, ", ".join(f"{r.chart} {r.version}" for r in refs))
    return refs


@task(task_run_name="prepare_namespace[{access.name}]", **ONCE_PER_RUN, **RETRYING)
def prepare_namespace(spec: MeshSpec, access: ClusterAccess, *, target: MeshwrightTarget) -> str:
    """Create or update istio-system with its network label and control-plane annotation (server-side apply).

    Args:
        spec: the validated mesh spec.
        access: the cluster, RUNNING.
        target: where the mesh is built.
    """
    manifest = istio_values.namespace(spec, spec.cluster(access.name))
    client = clients.cloud(target).kube_for(access)
    kube.apply(client, [manifest], cluster=access.name, step="prepare_namespace")
    return naming.ISTIO_NAMESPACE


@task(task_run_name="install_{release}[{access.name}]", **ONCE_PER_RUN, **RETRYING)
def install_release(
    spec: MeshSpec,
    access: ClusterAccess,
    release: str,
    charts: list[ChartRef],
    *,
    target: MeshwrightTarget,
    remote_pilot_address: str | None = None,
) -> ReleaseResult:
    """Install or upgrade one of the cluster's Istio releases; unchanged chart and values make no revision.

    Readiness is `wait_release_ready`'s, so that what needs only the objects (a gateway's address)
    does not wait for pods.

    Args:
        spec: the validated mesh spec.
        access: the cluster.
        release: istio-base, istiod or istio-eastwestgateway.
        charts: what `preflight_charts` resolved.
        target: where the mesh is built.
        remote_pilot_address: a remote's primary's east-west gateway address (istiod on a remote).
    """
    clock, cluster = Clock(f"install_{release}", access.name), spec.cluster(access.name)
    stored = stored_releases(target, access, step=clock.step)
    installed = installed_revisions(target, access, step=clock.step, stored=stored)
    others = [r for r in installed if r != istio_values.revision(spec)]
    # beside another revision (an upgrade), the tag stays where it is until the control plane is verified
    plan = istio_values.release(
        spec, cluster, release, remote_pilot_address=remote_pilot_address, tagged=not others
    )
    ref = next(r for r in charts if r.chart == plan.chart)
    result = ensure_helm_release(target, access, ref, plan.name, plan.values, step=clock.step, stored=stored)
    get_run_logger().info(
        "%s %s in %s: %s %s, revision %d",
        result.action, release, access.name, ref.chart, result.version, result.revision,
    )  # fmt: skip
    return result.model_copy(update={"timing": clock.done()})


@task(task_run_name="wait_ready_{release}[{access.name}]", cache_policy=NO_CACHE, **RETRYING)
def wait_release_ready(
    spec: MeshSpec, access: ClusterAccess, release: str, *, target: MeshwrightTarget
) -> bool:
    """Wait until what a release runs is available (istiod's Deployment, a primary's gateway).

    Returns False for a release meshwright does not wait for (base; a remote's istiod and gateway).

    Args:
        spec: the validated mesh spec.
        access: the cluster.
        release: istio-base, istiod or istio-eastwestgateway.
        target: where the mesh is built.
    """
    if not istio_values.awaited(spec.cluster(access.name), release):
        return False
    name = istio_values.release_name(spec, release)
    _wait_ready(target, access, name, step=f"wait_ready_{release}")
    return True


def stored_releases(
    target: MeshwrightTarget, access: ClusterAccess, *, step: str
) -> helm_storage.Stored | None:
    """helm's storage Secrets in the cluster's istio-system (one list call, no helm process), or
    None when the helm here keeps its releases elsewhere (HELM_DRIVER)."""
    client = clients.cloud(target).kube_for(access)
    try:
        return helm_storage.kept(client, naming.ISTIO_NAMESPACE, cluster=access.name, step=step)
    finally:
        client.close()


def installed_revisions(
    target: MeshwrightTarget, access: ClusterAccess, *, step: str, stored: helm_storage.Stored | None = None
) -> dict[str, str]:
    """The istiod revisions installed in the cluster: revision -> chart version (see istio_values),
    from helm's storage Secrets (`stored`, read here when not given) or, failing those, `helm list`."""
    stored = stored or stored_releases(target, access, step=step)
    command = functools.partial(clients.cloud(target).helm_for, access, step=step)
    return istio_values.istiod_revisions(helm.release_versions(stored, command, naming.ISTIO_NAMESPACE))


def _running_revisions(client: Any, access: ClusterAccess) -> list[str]:
    """The revisions of the istiod Deployments in istio-system ("" for an unrevisioned istiod)."""
    apps = kubernetes.client.api.apps_v1_api.AppsV1Api(client)
    with kube_call(cluster=access.name, step="expose_on_gateway", what="istiod deployments"):
        found = apps.list_namespaced_deployment(naming.ISTIO_NAMESPACE, label_selector="app=istiod").items
    revs = {(d.metadata.labels or {}).get("istio.io/rev", "default") for d in found if d.metadata}
    return sorted("" if r == "default" else r for r in revs)


def ensure_helm_release(
    target: MeshwrightTarget,
    access: ClusterAccess,
    ref: ChartRef,
    name: str,
    values: dict[str, Any],
    *,
    step: str,
    stored: helm_storage.Stored | None = None,
) -> ReleaseResult:
    """One Helm release in the cluster's istio-system, helm's failures as meshwright's (for `step`).

    The release as helm stored it (`stored`, read here when not given) decides "unchanged" without a
    helm process; without a storage Secret for it, helm is asked as before. An unchanged release is
    checked for objects deleted under it (a ClusterRoleBinding, a webhook configuration) and
    repaired when any is gone: helm never re-creates them on its own.
    """
    cloud, ns = clients.cloud(target), naming.ISTIO_NAMESPACE
    stored = stored or stored_releases(target, access, step=step)
    last = stored.latest(name) if stored else None
    absent = stored is not None and not stored.holds(name)
    with cloud.helm_for(access, step=step) as command:
        result = asyncio.run(
            helm.ensure_release(
                command, ref, name, values, cluster=access.name, namespace=ns, stored=last, absent=absent
            )
        )
        if result.action != "unchanged":
            return result
        rendered = (
            helm.manifest_objects(last.manifest) if last else asyncio.run(helm.manifest(command, name, ns))
        )
        gone = _missing(target, access, rendered, step=step)
        if not gone:
            return result
        get_run_logger().warning(
            "release %s in %s: %s deleted under it; upgrading to re-create them",
            name,
            access.name,
            ", ".join(gone),
        )
        return asyncio.run(helm.repair(command, ref, name, values, cluster=access.name, namespace=ns))


def _missing(
    target: MeshwrightTarget, access: ClusterAccess, rendered: list[dict[str, Any]], *, step: str
) -> list[str]:
    client = clients.cloud(target).kube_for(access)
    try:
        return kube.missing(
            client, rendered, cluster=access.name, step=step, namespace=naming.ISTIO_NAMESPACE
        )
    finally:
        client.close()


def _wait_ready(target: MeshwrightTarget, access: ClusterAccess, release: str, *, step: str) -> None:
    """`release`'s Deployment (the Helm release's name: istiod-<rev>, the gateway) rolled out."""
    deployment = release
    cloud = clients.cloud(target)
    timeout = cloud.waits.ready
    try:
        kube.wait_rollout(
            cloud.kube_for(access),
            naming.ISTIO_NAMESPACE,
            deployment,
            cluster=access.name,
            step=step,
            timeout=timeout,
        )
    except NotReady as e:  # a control plane that never comes up is not fixed by retrying
        raise OperationFailed(
            f"release {release}: {e.message}; see `kubectl -n istio-system describe deployment {deployment}`",
            cluster=access.name,
            step=step,
        ) from None


@task(task_run_name="gateway_address[{access.name}]", cache_policy=NO_CACHE, **RETRYING)
def gateway_address(access: ClusterAccess, *, target: MeshwrightTarget) -> str:
    """The east-west gateway's load-balancer address (IP, or hostname), once it has one.

    Args:
        access: a cluster with an east-west gateway.
        target: where the mesh is built.
    """
    cloud = clients.cloud(target)
    api, timeout = CoreV1Api(cloud.kube_for(access)), cloud.waits.address
    what = f"service/{naming.EASTWEST_RELEASE}"
    with kube_call(cluster=access.name, step="gateway_address", what=what, endpoint=access.endpoint):
        address = _watch_address(api, timeout=timeout)
    if address:
        return address
    raise OperationFailed(
        f"service istio-system/{naming.EASTWEST_RELEASE} has no load-balancer address after {timeout:.0f}s",
        cluster=access.name,
        step="gateway_address",
    )


def _watch_address(api: CoreV1Api, *, timeout: float) -> str | None:
    deadline, watch = time.monotonic() + timeout, kubernetes.watch.Watch()
    try:
        while time.monotonic() < deadline:
            for event in watch.stream(
                api.list_namespaced_service,
                naming.ISTIO_NAMESPACE,
                field_selector=f"metadata.name={naming.EASTWEST_RELEASE}",
                timeout_seconds=max(1, int(deadline - time.monotonic())),
            ):
                found = kube.load_balancer_addresses(event["object"])
                if found:
                    return found[0]
    finally:
        watch.stop()
    return None


@task(task_run_name="expose_on_gateway[{access.name}]", **ONCE_PER_RUN, **RETRYING)
def expose_on_gateway(
    spec: MeshSpec, access: ClusterAccess, *, target: MeshwrightTarget, revisions: list[str] | None = None
) -> list[str]:
    """Apply the Gateways (and VirtualService) that expose istiod to remotes and services to other networks.

    Args:
        spec: the validated mesh spec.
        access: a primary with an east-west gateway.
        target: where the mesh is built.
        revisions: the istiod revisions routed to (default: the spec's and every one installed, so
            that a remote's pods keep reaching the revision that injects them while two run).
    """
    client = clients.cloud(target).kube_for(access)
    if revisions is None:
        revisions = sorted({istio_values.revision(spec), *_running_revisions(client, access)})
    manifests = istio_values.exposures(spec, spec.cluster(access.name), revisions)
    return kube.apply(client, manifests, cluster=access.name, step="expose_on_gateway")
