"""Remote secrets: the reader token of one cluster, proven, stored in a primary's istio-system.

One task per source reads its reader token once and writes the secret into every primary that
reads it, in the same run (`exchange_remote_secrets`; `exchange_remote_secret` does one pair), so
the token never lands in Prefect's results, parameters or logs: the task returns names, actions and
fingerprints, and persists nothing secret.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from typing import Any

import kubernetes.client
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from meshwright import clients, kube, naming
from meshwright import kubeconfig as kc
from meshwright import remote_secrets as rs
from meshwright.clients import MeshwrightTarget
from meshwright.errors import (
    Conflict,
    MeshwrightError,
    NotFound,
    PermanentError,
    PermissionDenied,
    TransientError,
)
from meshwright.kube import read_or_none
from meshwright.models import ClusterAccess, RemoteSecretResult
from meshwright.observe import remote_secret_metadata
from meshwright.translate import kube_call
from tasks.common import ONCE_PER_RUN, RETRYING

STEP = "exchange_remote_secret"
TOKEN_TIMEOUT = 60.0


def _core(client: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(client)


def _body(manifest: dict[str, Any]) -> Any:
    """The client serialises plain dicts as they are; its stubs only know its models."""
    return manifest


def _call(access: ClusterAccess, what: str) -> AbstractContextManager[None]:
    return kube_call(cluster=access.name, step=STEP, what=what, endpoint=access.endpoint)


def _check_reader_account(core: kubernetes.client.CoreV1Api, access: ClusterAccess) -> None:
    ns, sa = naming.ISTIO_NAMESPACE, naming.READER_SERVICE_ACCOUNT
    with _call(access, f"serviceaccount/{sa}"):
        found = read_or_none(lambda: core.read_namespaced_service_account(sa, ns))
    if found is None:
        # Creating it here would clash with Helm, which owns it (the base chart renders it).
        raise NotFound(
            f"ServiceAccount {ns}/{sa} is missing: install Istio's base chart on this cluster first",
            cluster=access.name,
            step=STEP,
        )


def current_token_secret(core: kubernetes.client.CoreV1Api, access: ClusterAccess) -> str:
    """The name of the reader's token Secret in use: the newest a rotation made, else istioctl's."""
    selector = f"{rs.READER_TOKEN_LABEL}=true"
    with _call(access, "reader token secrets"):
        found = core.list_namespaced_secret(naming.ISTIO_NAMESPACE, label_selector=selector).items
    return rs.current_reader_token([core.api_client.sanitize_for_serialization(s.metadata) for s in found])


def _reader_token(core: kubernetes.client.CoreV1Api, access: ClusterAccess) -> str:
    """Create (or adopt) the reader's token Secret and wait until the token controller filled it."""
    name, ns = current_token_secret(core, access), naming.ISTIO_NAMESPACE
    with _call(access, f"secret/{name}"):
        if read_or_none(lambda: core.read_namespaced_secret(name, ns)) is None:
            # Conflict: another pair's task created it a moment ago; adopt it.
            with contextlib.suppress(Conflict), _call(access, f"secret/{name}"):
                core.create_namespaced_secret(ns, _body(rs.reader_token_secret(name)))
        deadline = time.monotonic() + TOKEN_TIMEOUT
        while time.monotonic() < deadline:
            secret = read_or_none(lambda: core.read_namespaced_secret(name, ns))
            token = rs.token_of({"data": secret.data}) if secret is not None else None
            if token:
                return token
            time.sleep(0.2)
    raise TransientError(
        f"secret {ns}/{name} got no token within {TOKEN_TIMEOUT:.0f}s", cluster=access.name, step=STEP
    )


def _prove(cloud: clients.Cloud, access: ClusterAccess, token: str) -> None:
    """Make, with the kubeconfig's own token against its own cluster, the calls the primary's
    istiod will make with it: list and watch, at cluster scope, of what its informers read
    (rs.INFORMED). A missing permission is named now, not found later as `timeout` in clusterz."""
    client = cloud.kube_as(access.endpoint, access.ca_certificate, token, timeout=15.0)
    try:
        kube.list_and_watch(client, rs.INFORMED, cluster=access.name, step=STEP)
    except PermissionDenied as e:
        rejected = "HTTP 401" in e.message
        who = f"the reader token does not work against https://{access.endpoint}:" if rejected else ""
        message = f"{who or naming.READER_SERVICE_ACCOUNT} {e.message}"
        raise PermanentError(message, cluster=access.name, step=STEP) from None
    finally:
        client.close()


class _Listed:
    """Per flow run and primary: its remote secrets as one list saw them, name -> (resourceVersion,
    content digest), so that 49 sources writing into a primary look it up once, not 49 times (2,450
    reads at 50 primaries). Only digests are kept, never a secret's data. A run holds its mesh's
    slot, so within it only its own tasks write these secrets, and each records what it wrote; a
    write the list did not foresee (a 409) forgets the primary and is made again the careful way."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run: str | None = None
        self._seen: dict[str, dict[str, tuple[str, str]]] = {}
        self._primary_locks: dict[str, threading.Lock] = {}

    def of(
        self, run: str, core: kubernetes.client.CoreV1Api, primary: ClusterAccess
    ) -> dict[str, tuple[str, str]]:
        with self._lock:
            if run != self._run:  # a new run: what an earlier run saw is stale
                self._run, self._seen, self._primary_locks = run, {}, {}
            lock = self._primary_locks.setdefault(primary.endpoint, threading.Lock())
        with lock:
            if primary.endpoint not in self._seen:
                with _call(primary, "remote secrets"):
                    found = core.list_namespaced_secret(
                        naming.ISTIO_NAMESPACE,
                        label_selector=f"{naming.REMOTE_SECRET_LABEL}=true",
                        _preload_content=False,
                    )
                self._seen[primary.endpoint] = {
                    item["metadata"]["name"]: (
                        item["metadata"].get("resourceVersion", ""),
                        rs.content_digest(item),
                    )
                    for item in _answer(found).get("items") or []
                }
            return self._seen[primary.endpoint]

    def record(self, run: str, primary: ClusterAccess, written: dict[str, Any]) -> None:
        with self._lock:
            seen = self._seen.get(primary.endpoint) if run == self._run else None
            if seen is not None:
                meta = written["metadata"]
                seen[meta["name"]] = (meta.get("resourceVersion", ""), rs.content_digest(written))

    def forget(self, primary: ClusterAccess) -> None:
        with self._lock:
            self._seen.pop(primary.endpoint, None)


_LISTED = _Listed()


def _store(
    core: kubernetes.client.CoreV1Api,
    primary: ClusterAccess,
    wanted: dict[str, Any],
    *,
    run: str | None = None,
) -> str:
    """Write the remote secret unless the primary already holds the same; returns the action. With
    the flow `run` it is written for, the primary's remote secrets are looked up in one list a run."""
    if run is None:
        return _store_one(core, primary, wanted)
    name, ns = wanted["metadata"]["name"], naming.ISTIO_NAMESPACE
    found = _LISTED.of(run, core, primary).get(name)
    if found is not None and found[1] == rs.content_digest(wanted):
        return "unchanged"
    try:
        with _call(primary, f"secret/{name}"):
            if found is None:
                written = core.create_namespaced_secret(ns, _body(wanted), _preload_content=False)
            else:
                body = _body(_versioned(wanted, found[0]))
                written = core.replace_namespaced_secret(name, ns, body, _preload_content=False)
    except Conflict:  # changed since the list (not by this run): look again, one secret at a time
        _LISTED.forget(primary)
        return _store_one(core, primary, wanted)
    _LISTED.record(run, primary, _answer(written))
    return "created" if found is None else "updated"


def _store_one(core: kubernetes.client.CoreV1Api, primary: ClusterAccess, wanted: dict[str, Any]) -> str:
    """`_store` by a read of the one secret first."""
    name, ns = wanted["metadata"]["name"], naming.ISTIO_NAMESPACE
    # The JSON as the API answers it, not the client's models: building a V1Secret per read and
    # per write was most of the flow's own time in 2,450 writes (50 primaries).
    with _call(primary, f"secret/{name}"):
        existing = read_or_none(lambda: core.read_namespaced_secret(name, ns, _preload_content=False))
        if existing is None:
            core.create_namespaced_secret(ns, _body(wanted), _preload_content=False)
            return "created"
        stored = _answer(existing)
        if rs.same_secret(stored, wanted):
            return "unchanged"
        version = stored["metadata"].get("resourceVersion")
        core.replace_namespaced_secret(name, ns, _body(_versioned(wanted, version)), _preload_content=False)
        return "updated"


def _versioned(wanted: dict[str, Any], version: str | None) -> dict[str, Any]:
    """`wanted` as a replace of the stored secret at `version` (the API refuses a stale one: 409)."""
    return {**wanted, "metadata": {**wanted["metadata"], "resourceVersion": version}}


def _answer(response: Any) -> dict[str, Any]:
    """The object a call made with `_preload_content=False` answered (its urllib3 response's JSON)."""
    return dict(json.loads(response.data))


def _reader_config(cloud: clients.Cloud, source: ClusterAccess) -> bytes:
    """The kubeconfig a primary's istiod reads `source` with: its reader token, proven (secret)."""
    src = cloud.kube_for(source)
    try:
        _check_reader_account(_core(src), source)
        token = _reader_token(_core(src), source)
    finally:
        src.close()
    _prove(cloud, source, token)
    server = f"https://{source.endpoint}"
    return rs.render(kc.with_token(source.name, server=server, ca_data=source.ca_certificate, token=token))


def _give(
    cloud: clients.Cloud, source: str, config: bytes, primary: ClusterAccess, run: str | None = None
) -> RemoteSecretResult:
    """Write `source`'s remote secret into `primary` (unless it holds the same); names, never the token."""
    wanted = rs.remote_secret(source, config)
    dst = cloud.kube_for(primary)
    try:
        action = _store(_core(dst), primary, wanted, run=run)
    finally:
        dst.close()
    name = wanted["metadata"]["name"]
    return RemoteSecretResult(
        source=source, primary=primary.name, secret=name, action=action, fingerprint=rs.fingerprint(config)
    )


def _log(results: list[RemoteSecretResult]) -> None:
    """One line per action (the writes ran in pool threads, which have no run logger)."""
    by_action: dict[str, list[str]] = {}
    for r in results:
        by_action.setdefault(r.action, []).append(r.primary)
    for action, primaries in by_action.items():
        get_run_logger().info("remote secret %s in %s: %s", results[0].secret, ", ".join(primaries), action)


# The result holds names, an action and a fingerprint, never the token: it may be persisted.
@task(
    task_run_name="exchange_remote_secret[{source.name}->{primary.name}]",
    **ONCE_PER_RUN,
    **RETRYING,
)
def exchange_remote_secret(
    source: ClusterAccess, primary: ClusterAccess, *, target: MeshwrightTarget
) -> RemoteSecretResult:
    """Give `primary`'s istiod a working kubeconfig for `source`, as `istioctl create-remote-secret` does.

    The token is read from `source`, proven with a request against `source`, and written into
    `primary` within this one run; only a fingerprint leaves it.

    Args:
        source: the cluster the primary must read.
        primary: the primary whose istio-system receives `istio-remote-secret-<source>`.
        target: where the mesh is built.
    """
    cloud = clients.cloud(target)
    result = _give(cloud, source.name, _reader_config(cloud, source), primary)
    _log([result])
    return result


# One pool for the writes of every source's task in the process: 50 primaries x 49 sources are
# 2,450 writes. A pool per task made 50 x 8 writers at once, more than a cluster's pooled
# connections (kube.Shared.POOL): the rest opened and threw away a TLS connection per write.
WRITERS = 16
_WRITES = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="remote-secrets")


@task(task_run_name="exchange_remote_secrets[{source.name}]", **ONCE_PER_RUN, **RETRYING)
def exchange_remote_secrets(
    source: ClusterAccess, primaries: list[ClusterAccess], *, target: MeshwrightTarget
) -> list[RemoteSecretResult]:
    """Give every primary that reads `source` a working kubeconfig for it: the reader token is read
    and proven once, then written into the primaries side by side.

    Every write is tried; the task fails, naming each primary that refused, when any did, and its
    retry rewrites only what is missing or different (a primary holding the same secret is left as
    it is). The token never leaves this run.

    Args:
        source: the cluster the primaries must read.
        primaries: the primaries whose istio-system receives `istio-remote-secret-<source>`.
        target: where the mesh is built.
    """
    cloud = clients.cloud(target)
    config = _reader_config(cloud, source)
    run = flow_run.get_id()  # read here: the writers' threads do not carry the run's context
    futures = [_WRITES.submit(_give, cloud, source.name, config, p, run) for p in primaries]
    wait(futures)
    del config
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        raise _failure(source.name, failed)
    results = [f.result() for f in futures]
    _log(results)
    return results


def _failure(source: str, failed: list[BaseException | None]) -> MeshwrightError:
    """One error for the writes that failed: transient when every one of them was."""
    transient = all(isinstance(e, TransientError) for e in failed)
    kind: type[MeshwrightError] = TransientError if transient else PermanentError
    return kind(
        f"{len(failed)} primar{'y' if len(failed) == 1 else 'ies'} did not take {source}'s secret: "
        + "; ".join(str(e) for e in failed),
        cluster=source,
        step=STEP,
    )


@task(task_run_name="prune_remote_secrets[{primary.name}]", cache_policy=NO_CACHE, **RETRYING)
def prune_remote_secrets(
    primary: ClusterAccess, keep: list[str], ours: list[str], *, target: MeshwrightTarget
) -> list[str]:
    """Delete the remote secrets in `primary` for clusters of the mesh it no longer reads: a cluster
    that left the mesh, or a remote that now answers to another primary (istiod drops a cluster
    whose secret goes). A secret for a cluster that is not the mesh's (someone's own) stays.

    Args:
        primary: the primary whose istio-system is pruned.
        keep: the clusters whose secrets stay (its sources in the spec).
        ours: every cluster of the mesh, in the spec or leaving it.
        target: where the mesh is built.
    """
    core = _core(clients.cloud(target).kube_for(primary))
    try:
        metas = remote_secret_metadata(core.api_client, cluster=primary.name, step="prune_remote_secrets")
        gone = [m["name"] for m in metas if rs.cluster_of(m) in ours and rs.cluster_of(m) not in keep]
        for name in gone:
            with _call(primary, f"secret/{name}"), contextlib.suppress(NotFound):
                core.delete_namespaced_secret(name, naming.ISTIO_NAMESPACE)
    finally:
        core.api_client.close()
    if gone:
        get_run_logger().info("remote secrets removed from %s: %s", primary.name, ", ".join(gone))
    return gone
