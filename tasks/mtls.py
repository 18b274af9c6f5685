"""Reading what proves Bookinfo's mTLS mode in one cluster, for the pure checks in meshwright.mtls.

`observe_mtls` reads a primary's PeerAuthentications (Bookinfo's namespace and istio-system) and, in
a cluster that runs Bookinfo workloads, runs the plaintext probe: a pod outside the mesh sends one
curl and ends; its exit code and termination message are read from its status (no exec, no logs).
The same code runs on GKE and on the sandbox, whose data plane carries the probe's request. The
caller needs, in Bookinfo's namespace, `create`, `get`, `list`, `watch` and `delete` on pods, and
`list` on `peerauthentications.security.istio.io` there and in istio-system.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import kubernetes.client
from prefect import task
from prefect.cache_policies import NO_CACHE

from meshwright import clients, mtls, naming
from meshwright.clients import MeshwrightTarget
from meshwright.kube import read_or_none, watch_until
from meshwright.models import ClusterAccess
from meshwright.mtls import MtlsSeen, Probe
from meshwright.spec import MeshSpec, Role
from tasks.common import RETRYING
from tasks.verify import observing

STEP = "verify"
PEER_AUTHENTICATIONS = ("security.istio.io", "v1", "peerauthentications")
ENDED = ("Succeeded", "Failed")


def peer_authentications(client: kubernetes.client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    """The PeerAuthentications of `namespace` and of the root namespace (none without Istio's CRD)."""
    custom, (group, version, plural) = kubernetes.client.CustomObjectsApi(client), PEER_AUTHENTICATIONS
    found: list[dict[str, Any]] = []
    for ns in dict.fromkeys((namespace, naming.ISTIO_NAMESPACE)):
        listed: Any = read_or_none(partial(custom.list_namespaced_custom_object, group, version, ns, plural))
        found += list((listed or {}).get("items") or [])
    return found


def _gone(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    """Delete the probe pod at once if it is there (a run that died leaves one)."""
    read_or_none(lambda: core.delete_namespaced_pod(mtls.PROBE, namespace, grace_period_seconds=0))


def _await_gone(core: kubernetes.client.CoreV1Api, namespace: str, *, timeout: float, poll: float) -> None:
    deadline = time.monotonic() + timeout
    while read_or_none(lambda: core.read_namespaced_pod(mtls.PROBE, namespace)) is not None:
        if time.monotonic() > deadline:
            return  # the create that follows says what is in the way
        time.sleep(poll)


def _ended(core: kubernetes.client.CoreV1Api, namespace: str, *, timeout: float) -> Any:
    """The probe pod once it has ended (a watch), or as it was when `timeout` passed."""

    def ended(pod: Any) -> bool:
        return bool(pod.status and pod.status.phase in ENDED)

    return watch_until(core.list_namespaced_pod, namespace, mtls.PROBE, ended, timeout=timeout)[1]


def read_probe(pod: Any, url: str) -> Probe:
    """curl's exit code and message, from the pod's container status."""
    phase = pod.status.phase if pod is not None and pod.status else None
    statuses = (pod.status.container_statuses if pod is not None and pod.status else None) or []
    ended = next((s.state.terminated for s in statuses if s.state and s.state.terminated), None)
    if ended is None:
        return Probe(target=url, message=f"the probe pod is {phase or 'not there'}, not ended")
    return Probe(target=url, exit_code=ended.exit_code, message=(ended.message or "").strip())


def _sidecar(pod: Any) -> bool:
    return any(c.name == "istio-proxy" for c in (pod.spec.containers if pod.spec else []) or [])


def run_probe(
    client: kubernetes.client.ApiClient, namespace: str, url: str, *, timeout: float, poll: float
) -> Probe:
    """One plaintext GET from a pod outside the mesh; the pod is removed afterwards."""
    core = kubernetes.client.CoreV1Api(client)
    _gone(core, namespace)
    _await_gone(core, namespace, timeout=timeout, poll=poll)
    body: Any = mtls.probe_pod(namespace, url)  # the client sends a dict as it is
    created = core.create_namespaced_pod(namespace, body)
    try:
        if _sidecar(created):
            return Probe(target=url, sidecar=True)
        return read_probe(_ended(core, namespace, timeout=timeout), url)
    finally:
        _gone(core, namespace)


@task(task_run_name="observe_mtls[{access.name}]", cache_policy=NO_CACHE, persist_result=False, **RETRYING)
def observe_mtls(spec: MeshSpec, access: ClusterAccess, *, target: MeshwrightTarget) -> MtlsSeen:
    """A primary's PeerAuthentication mode for Bookinfo's namespace, and the plaintext probe where
    Bookinfo runs workloads (see meshwright.mtls).

    Args:
        spec: the validated mesh spec, with a `bookinfo` section.
        access: how to reach this cluster.
        target: where the mesh is built (the probe waits as long as a rollout may take there).
    """
    assert spec.bookinfo is not None
    seen, ns, waits = MtlsSeen(cluster=access.name), spec.bookinfo.namespace, clients.cloud(target).waits
    url = mtls.probe_target(spec, access.name)
    with observing(target, access, "mTLS policy and probe", into=seen) as client:
        if spec.cluster(access.name).role is Role.PRIMARY:
            policies = peer_authentications(client, ns)
            seen.mode, seen.source = mtls.namespace_mode(policies, ns)
            seen.relaxed = mtls.relaxing(policies, ns)
        if url is not None:
            seen.probe = run_probe(client, ns, url, timeout=waits.ready, poll=waits.poll)
    return seen
