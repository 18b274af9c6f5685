"""The drills' I/O: requests flowing through the ingress meanwhile (tasks/traffic.py `Load`), a
Deployment scaled and waited for, a reader token rotated. What must hold is meshwright.drills' to judge.

Each drill puts back what it changed in a `finally`: the failover drill scales its Deployment back
to the replicas it had and waits for them; the rotation leaves every remote secret with a token
that works (the old one is revoked only after every primary synced the new one). Tokens are read,
written and forgotten inside one task run; results carry Secret names only.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kubernetes.client
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from meshwright import clients, drills, naming
from meshwright import kubeconfig as kc
from meshwright import remote_secrets as rs
from meshwright.clients import Cloud, MeshwrightTarget
from meshwright.drills import DrillResult, RotatedToken, Victim
from meshwright.errors import MeshwrightError, NotFound
from meshwright.models import ClusterAccess
from meshwright.spec import MeshSpec
from meshwright.translate import kube_call
from tasks.remote_secrets import _prove, _store, current_token_secret
from tasks.traffic import POLL, Load
from tasks.verify import read_clusterz

STEP = "drill"
SECRET_EVENT = 1.0  # istiod handles a secret event within a second; clusterz names no kubeconfig hash
TOKEN_TIMEOUT = 60.0
LEAD_IN = 0.5  # seconds of requests before a drill changes anything


def _wait(check: Callable[[], bool], *, within: float) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


# -- failover --------------------------------------------------------------------------------


def scale(client: kubernetes.client.ApiClient, access: ClusterAccess, victim: Victim, replicas: int) -> int:
    """Set the Deployment's replicas through its scale subresource; returns what it had."""
    apps = kubernetes.client.AppsV1Api(client)
    with kube_call(cluster=access.name, step=STEP, what=f"deployment/{victim.deployment} scale"):
        current = apps.read_namespaced_deployment_scale(victim.deployment, victim.namespace)
        had = int((current.spec.replicas if current.spec else None) or 0)
        current.spec = kubernetes.client.V1ScaleSpec(
            replicas=replicas
        )  # a PUT: a concurrent change conflicts
        apps.replace_namespaced_deployment_scale(victim.deployment, victim.namespace, current)
    return had


def pods(client: kubernetes.client.ApiClient, access: ClusterAccess, victim: Victim) -> tuple[int, int]:
    """(pods not being deleted, ready pods) of the victim's version: Bookinfo's labels app and version."""
    core = kubernetes.client.CoreV1Api(client)
    selector = f"app=reviews,version={victim.version}"
    with kube_call(cluster=access.name, step=STEP, what=f"pods of {victim.deployment}"):
        found = list(core.list_namespaced_pod(victim.namespace, label_selector=selector).items)
    alive = [p for p in found if not (p.metadata and p.metadata.deletion_timestamp)]
    ready = [p for p in alive if _ready(p)]
    return len(alive), len(ready)


def _ready(pod: Any) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


@task(task_run_name="drill_failover", cache_policy=NO_CACHE, persist_result=False)
def drill_failover(
    spec: MeshSpec, clusters: dict[str, ClusterAccess | None], address: str, *, target: MeshwrightTarget
) -> DrillResult:
    """Scale one placed reviews version to 0 while requests flow, see the other clusters serve, scale
    it back (always) and see it answer again.

    Args:
        spec: the validated mesh spec, with Bookinfo.
        clusters: every cluster's access.
        address: the ingress gateway's address.
        target: where the mesh is built.
    """
    within = clients.cloud(target).waits.converge
    with Load(address) as load:
        load.until(lambda s, now: now >= LEAD_IN and len(s) >= 10, within=within)  # before anything changes
        victim = drills.failover_victim(spec, drills.served(load.samples))
        access = clusters.get(victim.cluster)
        if access is None:
            why = f"{victim.cluster} does not exist"
            return DrillResult(drill=drills.FAILOVER, subject=str(victim), problems=[why])
        marks: dict[str, float | None] = {"down": None, "restore": None, "up": None}
        client = clients.cloud(target).kube_for(access)
        try:
            _outage(client, access, victim, load, marks, within=within)
        finally:
            client.close()
    return drills.judge_failover(victim, load.samples, marks, seconds=load.now())


def _outage(
    client: kubernetes.client.ApiClient,
    access: ClusterAccess,
    victim: Victim,
    load: Load,
    marks: dict[str, float | None],
    *,
    within: float,
) -> None:
    log = get_run_logger()
    replicas = scale(client, access, victim, 0)
    try:
        if _wait(lambda: pods(client, access, victim)[0] == 0, within=within):
            marks["down"] = load.now()
            log.info("%s scaled to 0 (from %d): its pods are gone", victim, replicas)
            load.until(lambda s, now: drills.failed_over(s, victim, marks["down"] or 0.0, now), within=within)
    finally:
        marks["restore"] = load.now()
        scale(client, access, victim, replicas)
        if _wait(lambda: pods(client, access, victim)[1] >= replicas, within=within):
            marks["up"] = load.now()
            log.info("%s back to %d ready replica(s)", victim, replicas)
    if marks["up"] is not None:
        up = marks["up"]
        load.until(lambda s, now: drills.back(s, victim, up) is not None, within=within)


# -- reader token rotation -------------------------------------------------------------------


def _new_token(core: kubernetes.client.CoreV1Api, access: ClusterAccess, name: str) -> str:
    """A new token Secret for the reader, waited for until the token controller filled it."""
    ns = naming.ISTIO_NAMESPACE
    with kube_call(cluster=access.name, step=STEP, what=f"secret/{name}"):
        body: Any = rs.reader_token_secret(name)
        core.create_namespaced_secret(ns, body)
        deadline = time.monotonic() + TOKEN_TIMEOUT
        while time.monotonic() < deadline:
            token = rs.token_of({"data": core.read_namespaced_secret(name, ns).data})
            if token:
                return token
            time.sleep(POLL)
    raise MeshwrightError(
        f"secret {ns}/{name} got no token within {TOKEN_TIMEOUT:.0f}s", cluster=access.name, step=STEP
    )


def _synced(cloud: Cloud, primary: ClusterAccess, source: str) -> bool:
    client = cloud.kube_for(primary)
    try:
        return read_clusterz(client, primary).get(source) == "synced"
    except MeshwrightError:
        return False
    finally:
        client.close()


def _write_all(cloud: Cloud, source: ClusterAccess, primaries: list[ClusterAccess], token: str) -> None:
    config = rs.render(
        kc.with_token(
            source.name, server=f"https://{source.endpoint}", ca_data=source.ca_certificate, token=token
        )
    )
    wanted = rs.remote_secret(source.name, config)
    for primary in primaries:
        client = cloud.kube_for(primary)
        try:
            _store(kubernetes.client.CoreV1Api(client), primary, wanted)
        finally:
            client.close()


def _revoke(core: kubernetes.client.CoreV1Api, access: ClusterAccess, name: str) -> None:
    """Delete a token Secret: the API server refuses its token from now on."""
    with contextlib.suppress(NotFound), kube_call(cluster=access.name, step=STEP, what=f"secret/{name}"):
        core.delete_namespaced_secret(name, naming.ISTIO_NAMESPACE)


def rotate_reader_token(
    cloud: Cloud, source: ClusterAccess, primaries: list[ClusterAccess], *, within: float
) -> RotatedToken:
    """Replace `source`'s reader token in every primary that reads it (`_replace`); a failure is the
    result's `problem`, with the Secret names it concerns."""
    client = cloud.kube_for(source)
    core = kubernetes.client.CoreV1Api(client)
    names = [p.name for p in primaries]
    done = RotatedToken(cluster=source.name, old_secret="", new_secret="", primaries=names)
    try:
        done.old_secret = current_token_secret(core, source)
        done.new_secret = rs.rotated_token_name(time.time())
        _replace(cloud, core, source, primaries, done, within=within)
    except MeshwrightError as e:
        done.problem = e.message
    finally:
        client.close()
    return done


def _replace(
    cloud: Cloud,
    core: kubernetes.client.CoreV1Api,
    source: ClusterAccess,
    primaries: list[ClusterAccess],
    done: RotatedToken,
    *,
    within: float,
) -> None:
    """New token, proven; new remote secret in every primary; every primary's istiod synced with it;
    only then the old token revoked. A token that fails its proof is deleted again (nothing holds
    it); a primary that does not sync keeps the old token valid: every remote secret then holds a
    token that works, old or new."""
    token = _new_token(core, source, done.new_secret)
    try:
        _prove(cloud, source, token)
    except MeshwrightError:
        _revoke(core, source, done.new_secret)
        raise
    started = time.monotonic()
    _write_all(cloud, source, primaries, token)
    del token
    time.sleep(SECRET_EVENT)
    if not _wait(lambda: all(_synced(cloud, p, source.name) for p in primaries), within=within):
        done.problem = f"not synced with the new token within {within:.0f}s; the old token stays valid"
        return
    done.synced_seconds = round(time.monotonic() - started, 2)
    _revoke(core, source, done.old_secret)
    done.revoked = True


@task(task_run_name="drill_rotate_secrets", cache_policy=NO_CACHE, persist_result=False)
def drill_rotate_secrets(
    spec: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    address: str | None,
    *,
    target: MeshwrightTarget,
) -> DrillResult:
    """Replace every cluster's reader token (new token, new remote secrets, synced, old one revoked)
    while requests flow through the ingress; no request may fail.

    Args:
        spec: the validated mesh spec.
        clusters: every cluster's access.
        address: the ingress gateway's address (None: the rotation is judged without traffic).
        target: where the mesh is built.
    """
    if address is None:
        rotated = _rotate_all(spec, clusters, target=target)
        return drills.judge_rotation(spec, rotated, [], revoked_at=None, seconds=0.0)
    with Load(address) as load:
        load.until(lambda s, now: now >= LEAD_IN, within=LEAD_IN + 1.0)
        rotated = _rotate_all(spec, clusters, target=target)
        revoked_at = load.now()  # requests go on a while: a lost cluster shows after its secret's use
        load.until(lambda s, now: now - revoked_at >= 2 * drills.QUIET_SECONDS, within=10.0)
    return drills.judge_rotation(spec, rotated, load.samples, revoked_at=revoked_at, seconds=load.now())


def _rotate_all(
    spec: MeshSpec, clusters: dict[str, ClusterAccess | None], *, target: MeshwrightTarget
) -> list[RotatedToken]:
    """Every cluster's token at once (each waits for its own primaries' istiod), reported in the
    spec's order; a cluster that is gone is a problem."""
    cloud, readers = clients.cloud(target), dict[str, list[str]]()
    for source, primary in rs.pairs(spec):
        readers.setdefault(source, []).append(primary)

    def rotate(source: str) -> RotatedToken:
        primaries = readers[source]
        access, found = clusters.get(source), [a for p in primaries if (a := clusters.get(p))]
        if access is None or len(found) < len(primaries):
            why = "the cluster or a primary that reads it does not exist"
            return RotatedToken(
                cluster=source, old_secret="", new_secret="", primaries=primaries, problem=why
            )
        return rotate_reader_token(cloud, access, found, within=cloud.waits.converge)

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(readers)))) as pool:
        rotated = list(pool.map(rotate, readers))
    names = ", ".join(f"{r.cluster} -> {r.new_secret}" for r in rotated)
    get_run_logger().info("reader tokens rotated: %s", names)
    return rotated


@task(cache_policy=NO_CACHE)
def publish_drills(mesh: str, results: list[DrillResult]) -> str:
    """The drills' table (`mesh-<name>-drills`): what each took away, the requests meanwhile, how
    long until it was back, and its problems."""
    key = naming.artifact_key(mesh, "drills")
    failed = [r.drill for r in results if not r.ok]
    said = f"Drills of mesh {mesh}: " + (f"failed: {', '.join(failed)}" if failed else "all held")
    create_table_artifact(table=drills.rows(results) or [{"drill": "-"}], key=key, description=said)
    return key
