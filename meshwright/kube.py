"""Talking to a cluster's Kubernetes API: the same code against GKE and the sandbox.

A client is built from an endpoint, a CA and a token source; the token is fetched on every
request through the client's refresh hook, so long runs keep a fresh Google token. Manifests are
applied with server-side apply (CRDs first, then wait until they are Established).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError

from meshwright.errors import NotFound, PermanentError, TransientError
from meshwright.translate import from_kube

FIELD_MANAGER = "meshwright"
CRD_KIND = "CustomResourceDefinition"


def connect(
    endpoint: str, ca_certificate: str, token: Callable[[], str], *, timeout: float = 30.0
) -> kubernetes.client.ApiClient:
    """An API client for `https://<endpoint>` trusting only the cluster's CA (base64 PEM)."""
    config = kubernetes.client.Configuration()
    config.host = f"https://{endpoint}"
    config.ssl_ca_cert = _ca_file(ca_certificate)
    config.api_key["authorization"] = "Bearer"  # the key must exist, or no header is sent

    def refresh(c: kubernetes.client.Configuration) -> None:
        c.api_key["authorization"] = f"Bearer {token()}"

    config.refresh_api_key_hook = refresh  # type: ignore[assignment]
    client = kubernetes.client.ApiClient(config)
    client.rest_client.pool_manager.connection_pool_kw["timeout"] = timeout
    return client


def _ca_file(ca_certificate: str) -> str:
    # The CA is public; a file is what urllib3 wants. Same content, same path: no pile-up.
    pem = base64.b64decode(ca_certificate)
    path = Path(tempfile.gettempdir()) / f"meshwright-ca-{hashlib.sha256(pem).hexdigest()[:16]}.crt"
    if not path.exists():
        path.write_bytes(pem)
    return str(path)


def dynamic(client: kubernetes.client.ApiClient) -> DynamicClient:
    cache = (
        Path(tempfile.gettempdir())
        / f"meshwright-discovery-{abs(hash(client.configuration.host))}-{time.monotonic_ns()}.json"
    )
    return DynamicClient(client, cache_file=str(cache))


def _dynamic(client: kubernetes.client.ApiClient, *, cluster: str, step: str) -> DynamicClient:
    try:
        return dynamic(client)
    except (ApiException, DynamicApiError) as e:
        raise from_kube(e, cluster=cluster, step=step, what="API discovery") from e


def _resource(dyn: DynamicClient, obj: dict[str, Any]) -> Any:
    try:
        return dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    except ResourceNotFoundError:
        dyn.resources.invalidate_cache()  # a CRD applied a moment ago
        return dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])


def apply(
    client: kubernetes.client.ApiClient,
    manifests: Iterable[dict[str, Any]],
    *,
    cluster: str,
    step: str,
    crd_timeout: float = 60.0,
) -> list[str]:
    """Server-side apply `manifests`; CRDs first, waited for until Established. Returns 'kind/name's."""
    items = list(manifests)
    crds = [m for m in items if m.get("kind") == CRD_KIND]
    rest = [m for m in items if m.get("kind") != CRD_KIND]
    dyn = _dynamic(client, cluster=cluster, step=step)
    applied = [_apply_one(dyn, m, cluster=cluster, step=step) for m in crds]
    for crd in crds:
        wait_established(client, crd["metadata"]["name"], cluster=cluster, step=step, timeout=crd_timeout)
    applied += [_apply_one(dyn, m, cluster=cluster, step=step) for m in rest]
    return applied


def _apply_one(dyn: DynamicClient, obj: dict[str, Any], *, cluster: str, step: str) -> str:
    try:
        resource = _resource(dyn, obj)
        dyn.server_side_apply(
            resource,
            body=obj,
            namespace=obj["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
    except (ApiException, DynamicApiError) as e:
        raise from_kube(e, cluster=cluster, step=step, what=f"{obj['kind']}/{obj['metadata']['name']}") from e
    except ResourceNotFoundError as e:
        raise PermanentError(
            f"the API has no {obj['kind']} in {obj['apiVersion']}", cluster=cluster, step=step
        ) from e
    return f"{obj['kind']}/{obj['metadata']['name']}"


def wait_established(
    client: kubernetes.client.ApiClient, name: str, *, cluster: str, step: str, timeout: float
) -> None:
    api = kubernetes.client.ApiextensionsV1Api(client)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crd = api.read_custom_resource_definition(name)
        conditions = (crd.status.conditions if crd.status else None) or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise TransientError(f"CRD {name} not Established after {timeout:.0f}s", cluster=cluster, step=step)


def wait_rollout(
    client: kubernetes.client.ApiClient,
    namespace: str,
    name: str,
    *,
    cluster: str,
    step: str,
    timeout: float = 300.0,
) -> None:
    """Return when the Deployment has all its replicas updated and available (a watch, no polling)."""
    apps = kubernetes.client.AppsV1Api(client)
    deadline = time.monotonic() + timeout
    watch = kubernetes.watch.Watch()
    try:
        while time.monotonic() < deadline:
            remaining = max(1, int(deadline - time.monotonic()))
            for event in watch.stream(
                apps.list_namespaced_deployment,
                namespace,
                field_selector=f"metadata.name={name}",
                timeout_seconds=remaining,
            ):
                if _rolled_out(event["object"]):
                    return
    except ApiException as e:
        raise from_kube(e, cluster=cluster, step=step, what=f"deployment/{name}") from e
    finally:
        watch.stop()
    raise TransientError(
        f"deployment {namespace}/{name} not rolled out after {timeout:.0f}s", cluster=cluster, step=step
    )


def _rolled_out(dep: Any) -> bool:
    status, want = dep.status, dep.spec.replicas if dep.spec.replicas is not None else 1
    if status is None or (status.observed_generation or 0) < (dep.metadata.generation or 0):
        return False
    return (status.updated_replicas or 0) == want and (status.available_replicas or 0) == want


def delete(
    client: kubernetes.client.ApiClient, manifests: Iterable[dict[str, Any]], *, cluster: str, step: str
) -> list[str]:
    """Delete what `apply` applied, in reverse order; what is already gone counts as deleted."""
    dyn, deleted = _dynamic(client, cluster=cluster, step=step), []
    for obj in reversed(list(manifests)):
        with contextlib.suppress(NotFound, ResourceNotFoundError):
            try:
                dyn.delete(
                    _resource(dyn, obj),
                    name=obj["metadata"]["name"],
                    namespace=obj["metadata"].get("namespace"),
                )
            except ApiException as e:
                raise from_kube(
                    e, cluster=cluster, step=step, what=f"{obj['kind']}/{obj['metadata']['name']}"
                ) from e
            deleted.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return deleted
