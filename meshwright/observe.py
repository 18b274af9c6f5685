"""What exists of a mesh, read for `plan` and for `up`'s prune: the labelled clusters, the firewall
rule's sources and, inside each RUNNING cluster, the remote secrets, Bookinfo's workloads and the
Helm releases. Reads only; every client comes from the factory. A cluster whose inside cannot be
read is reported as such (`unread`), not guessed.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kubernetes.client
from google.cloud import container_v1

from meshwright import bookinfo, bookinfo_catalog, clients, helm, helm_storage, naming, remote_secrets
from meshwright.drift import Observed, ObservedCluster
from meshwright.errors import MeshwrightError
from meshwright.kube import read_or_none
from meshwright.spec import BookinfoSpec, MeshSpec
from meshwright.status import mesh_clusters, mesh_firewalls
from meshwright.translate import kube_call

STEP = "observe"


def observe(spec: MeshSpec, target: clients.MeshwrightTarget) -> Observed:
    """The mesh of `spec` as it exists on `target` (clusters read in parallel)."""
    found = mesh_clusters(target, spec.project, spec.name, step=STEP)
    namespace = spec.bookinfo.namespace if spec.bookinfo else BookinfoSpec.model_fields["namespace"].default
    with ThreadPoolExecutor(max_workers=8) as pool:
        clusters = list(pool.map(lambda c: _cluster(target, c, namespace), found))
    rules = mesh_firewalls(target, spec.project, spec.name, step=STEP)
    return Observed(
        mesh=spec.name,
        clusters=sorted(clusters, key=lambda c: c.name),
        firewall_sources=sorted(s for r in rules for s in r.source_ranges) if rules else None,
    )


def _cluster(target: clients.MeshwrightTarget, c: container_v1.Cluster, namespace: str) -> ObservedCluster:
    seen = ObservedCluster(
        name=c.name, location=c.location, status=c.status.name, pod_cidr=c.cluster_ipv4_cidr
    )
    if c.status != container_v1.Cluster.Status.RUNNING:
        return seen.model_copy(update={"unread": f"cluster is {c.status.name}"})
    cloud, ca = clients.cloud(target), c.master_auth.cluster_ca_certificate
    try:
        client = cloud.kube(c.endpoint, ca)
        try:
            secrets, workloads = _remote_secrets(client, c.name), _workloads(client, c.name, namespace)
            mtls = peer_authentication_mode(client, namespace, cluster=c.name, step=STEP)
            # helm's storage Secrets when helm keeps them: a list call instead of a helm process per
            # cluster, 50 at the start of every `up` of a 50-cluster mesh
            stored = helm_storage.kept(client, naming.ISTIO_NAMESPACE, cluster=c.name, step=STEP)
        finally:
            client.close()
        command = functools.partial(cloud.helm, c.name, c.endpoint, ca, step=STEP)
        releases = helm.release_versions(stored, command, naming.ISTIO_NAMESPACE)
    except MeshwrightError as e:
        return seen.model_copy(update={"unread": str(e)})
    found = {"remote_secrets": secrets, "workloads": workloads, "releases": releases, "mtls": mtls}
    return seen.model_copy(update=found)


def _remote_secrets(client: kubernetes.client.ApiClient, cluster: str) -> list[str]:
    """The clusters this one's istiod is given a remote secret for."""
    return sorted(
        remote_secrets.cluster_of(m) for m in remote_secret_metadata(client, cluster=cluster, step=STEP)
    )


def remote_secret_metadata(
    client: kubernetes.client.ApiClient, *, cluster: str, step: str
) -> list[dict[str, Any]]:
    """The metadata of the remote secrets in a cluster's istio-system (Istio's label selects them);
    their data (a token) is not kept."""
    core = kubernetes.client.CoreV1Api(client)
    with kube_call(cluster=cluster, step=step, what="secrets"):
        found = core.list_namespaced_secret(
            naming.ISTIO_NAMESPACE, label_selector=f"{naming.REMOTE_SECRET_LABEL}=true"
        )
    return [s["metadata"] for s in client.sanitize_for_serialization(found)["items"]]


def peer_authentication_mode(
    client: kubernetes.client.ApiClient, namespace: str, *, cluster: str, step: str
) -> str:
    """The mode of Bookinfo's PeerAuthentication `default` ("" when there is none, or no Istio CRD)."""
    custom = kubernetes.client.CustomObjectsApi(client)
    group, version, plural = "security.istio.io", "v1", "peerauthentications"
    with kube_call(cluster=cluster, step=step, what=f"peerauthentication/{bookinfo.PEER_AUTHENTICATION}"):
        found: Any = read_or_none(
            lambda: custom.get_namespaced_custom_object(
                group, version, namespace, plural, bookinfo.PEER_AUTHENTICATION
            )
        )
    if not found:
        return ""
    mode = ((found.get("spec") or {}).get("mtls") or {}).get("mode")
    return str(mode or "UNSET")


def _workloads(client: kubernetes.client.ApiClient, cluster: str, namespace: str) -> list[str]:
    return bookinfo_deployments(client, namespace, cluster=cluster, step=STEP)


def bookinfo_deployments(
    client: kubernetes.client.ApiClient, namespace: str, *, cluster: str, step: str
) -> list[str]:
    """The Bookinfo workloads (Deployments of the catalogue) a cluster runs in `namespace`."""
    apps = kubernetes.client.AppsV1Api(client)
    with kube_call(cluster=cluster, step=step, what=f"deployments in {namespace}"):
        found = apps.list_namespaced_deployment(namespace)
    names = [d["metadata"]["name"] for d in client.sanitize_for_serialization(found)["items"]]
    return sorted(n for n in names if n in bookinfo_catalog.WORKLOADS)
