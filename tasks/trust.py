"""The mesh's shared root of trust: one root CA per mesh, one intermediate per cluster in `cacerts`.

The root is made once per mesh (or brought by the user) and kept where meshwright.trust says; each
cluster gets an intermediate signed by it in Secret `cacerts` before istiod starts. A cluster that
already holds an intermediate from the same root keeps it, so a rerun changes nothing; one that
holds another root's is refused (istiod only reloads intermediates of its current root).

Keys never leave a task run: tasks return fingerprints, and persist nothing else.
"""

from __future__ import annotations

import base64

import kubernetes.client
from kubernetes.client.api.core_v1_api import CoreV1Api
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from meshwright import clients, kube, naming, pki, trust
from meshwright.clients import MeshwrightTarget
from meshwright.errors import Conflict, PermanentError, TransientError
from meshwright.models import CacertsResult, ClusterAccess, RootInfo
from meshwright.spec import MeshSpec
from meshwright.translate import kube_call
from tasks.common import ONCE_PER_RUN, RETRYING, Clock

MANAGED_BY = {"app.kubernetes.io/managed-by": "meshwright"}


@task(task_run_name="ensure_root_ca", **ONCE_PER_RUN, **RETRYING)  # fingerprint + source: no key
def ensure_root_ca(spec: MeshSpec) -> RootInfo:
    """Load the mesh's root CA, or make and store it (RSA 4096) the first time.

    Args:
        spec: the validated mesh spec; `istio.root_ca` brings the user's own root.
    """
    root, source = trust.ensure_root(spec, trust.store_for(spec.name))
    info = RootInfo(fingerprint=pki.fingerprint(root.cert_pem), source=source)
    get_run_logger().info("root CA %s… of mesh %s: %s", info.fingerprint[:16], spec.name, source)
    return info


@task(task_run_name="forget_root_ca", cache_policy=NO_CACHE, **RETRYING)
def forget_root_ca(spec: MeshSpec) -> str:
    """Remove the mesh's stored root CA once the mesh is gone, unless the spec keeps it.

    Args:
        spec: the validated mesh spec; `istio.keep_root` keeps the root, `istio.root_ca` stores none.
    """
    done = trust.forget_root(spec, trust.store_for(spec.name))
    get_run_logger().info("root CA of mesh %s: %s", spec.name, done)
    return done


@task(task_run_name="forget_root_ca[{mesh}]", cache_policy=NO_CACHE, **RETRYING)
def forget_mesh_root(mesh: str) -> bool:
    """The reaper's: remove the stored root CA of a mesh whose clusters it deleted (it has no spec;
    a mesh that keeps its root says so on its clusters' labels, and the reaper skips it).

    Args:
        mesh: the mesh's name.
    """
    return trust.store_for(mesh).delete()


def _read(api: CoreV1Api, *, cluster: str) -> dict[str, bytes] | None:
    with kube_call(cluster=cluster, step="ensure_cacerts", what="secret/cacerts"):
        secret = kube.read_or_none(
            lambda: api.read_namespaced_secret(naming.CACERTS_SECRET, naming.ISTIO_NAMESPACE)
        )
    return None if secret is None else {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}


def _body(files: dict[str, bytes]) -> kubernetes.client.V1Secret:
    return kubernetes.client.V1Secret(
        api_version="v1",
        kind="Secret",
        type="Opaque",
        metadata=kubernetes.client.V1ObjectMeta(
            name=naming.CACERTS_SECRET, namespace=naming.ISTIO_NAMESPACE, labels=MANAGED_BY
        ),
        data={k: base64.b64encode(v).decode() for k, v in files.items()},
    )


def _kept(existing: dict[str, bytes], root: pki.KeyPair, *, cluster: str) -> str:
    """The fingerprint of an intermediate this cluster already has from our root; else refuse."""
    held = existing.get("root-cert.pem", b"")
    if not held or pki.fingerprint(held) != pki.fingerprint(root.cert_pem):
        raise Conflict(
            "secret istio-system/cacerts holds another root CA than this mesh's; delete it (and restart "
            "istiod) to move the cluster to the mesh's root",
            cluster=cluster,
            step="ensure_cacerts",
        )
    try:
        pki.verify_issued(existing["ca-cert.pem"], root.cert_pem)
    except Exception as e:
        raise Conflict(
            f"secret istio-system/cacerts: ca-cert.pem is not signed by the mesh's root ({e.__class__.__name__})",
            cluster=cluster,
            step="ensure_cacerts",
        ) from None
    return pki.fingerprint(existing["ca-cert.pem"])


@task(task_run_name="ensure_cacerts[{access.name}]", **ONCE_PER_RUN, **RETRYING)
def ensure_cacerts(
    spec: MeshSpec, access: ClusterAccess, root: RootInfo, *, target: MeshwrightTarget
) -> CacertsResult:
    """Give the cluster an intermediate CA from the mesh's root, as Secret istio-system/cacerts.

    Args:
        spec: the validated mesh spec.
        access: the cluster (istio-system must exist).
        root: the root that `ensure_root_ca` settled on in this run.
        target: where the mesh is built.
    """
    clock, name = Clock("ensure_cacerts", access.name), access.name
    keypair, _ = trust.ensure_root(spec, trust.store_for(spec.name))
    if pki.fingerprint(keypair.cert_pem) != root.fingerprint:
        raise PermanentError("the mesh's root CA changed during the run", cluster=name, step="ensure_cacerts")
    api = CoreV1Api(
        clients.cloud(target).kube_for(access)
    )  # imported eagerly: kubernetes loads it lazily, ~1 s
    existing = _read(api, cluster=name)
    if existing is not None:
        kept = _kept(existing, keypair, cluster=name)
        return CacertsResult(
            cluster=name,
            root_fingerprint=root.fingerprint,
            intermediate_fingerprint=kept,
            action="kept",
            timing=clock.done(),
        )
    intermediate = pki.new_intermediate(keypair, locality=name)
    try:
        with kube_call(cluster=name, step="ensure_cacerts", what="secret/cacerts"):
            api.create_namespaced_secret(
                naming.ISTIO_NAMESPACE, _body(pki.cacerts(intermediate, keypair.cert_pem))
            )
    except Conflict as e:  # another run made it between our look and our create: look again
        raise TransientError("cacerts appeared meanwhile", cluster=name, step="ensure_cacerts") from e
    get_run_logger().info("cacerts created in %s (intermediate L=%s)", name, name)
    return CacertsResult(
        cluster=name,
        root_fingerprint=root.fingerprint,
        intermediate_fingerprint=pki.fingerprint(intermediate.cert_pem),
        action="created",
        timing=clock.done(),
    )
