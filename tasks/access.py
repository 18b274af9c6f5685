"""The kubeconfig of a mesh: one context per cluster, named after the cluster.

It holds credentials on the sandbox (a token), so it is written with mode 0600 and only its
path ever leaves this module. It is marked with the mesh it belongs to, and a kubeconfig of
another mesh (or one meshwright did not write) is not overwritten unless the caller says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from meshwright import clients
from meshwright import kubeconfig as kc
from meshwright.clients import MeshwrightTarget
from meshwright.errors import Conflict
from meshwright.models import ClusterAccess
from meshwright.spec import MeshSpec


def kubeconfig(
    user: dict[str, Any], clusters: list[ClusterAccess], *, owner: kc.Owner | None = None
) -> dict[str, Any]:
    """The kubeconfig document of `clusters`, every context authenticating as `user`."""
    entries = [kc.Entry(c.name, f"https://{c.endpoint}", c.ca_certificate, user) for c in clusters]
    return kc.document(entries, owner=owner)


def owner(spec: MeshSpec) -> kc.Owner:
    return kc.Owner(mesh=spec.name, project=spec.project, target=spec.target.value)


@task(cache_policy=NO_CACHE)
def check_kubeconfig(spec: MeshSpec, path: str, *, force: bool = False) -> str:
    """Refuse, before anything is built, a kubeconfig path that holds another mesh's contexts.

    Args:
        spec: the validated mesh spec.
        path: where the kubeconfig will be written.
        force: overwrite whatever is there.
    """
    reason = None if force else kc.why_not_overwrite(Path(path), owner(spec))
    if reason:
        raise Conflict(
            f"{reason}; choose another --kubeconfig path, or pass --force to overwrite it",
            step="write_kubeconfig",
        )
    return path


@task(cache_policy=NO_CACHE)
def write_kubeconfig(
    spec: MeshSpec, clusters: list[ClusterAccess], path: str, *, target: MeshwrightTarget, force: bool = False
) -> str:
    """Write the mesh's kubeconfig (mode 0600). Returns its path, never its content.

    Args:
        spec: the validated mesh spec.
        clusters: how to reach each cluster.
        path: where to write it.
        target: where the mesh is built (says how a kubeconfig user authenticates).
        force: overwrite a kubeconfig that belongs to another mesh.
    """
    check_kubeconfig.fn(spec, path, force=force)
    user = clients.cloud(target).kubeconfig_user()
    kc.write(Path(path), kubeconfig(user, clusters, owner=owner(spec)))
    get_run_logger().info(
        "kubeconfig with contexts %s written to %s", ", ".join(c.name for c in clusters), path
    )
    return path


@task(cache_policy=NO_CACHE)
def remove_kubeconfig(spec: MeshSpec, path: str) -> bool:
    """Remove a mesh's kubeconfig once its clusters are gone; a file of another mesh stays.

    Args:
        spec: the validated mesh spec.
        path: the kubeconfig `write_kubeconfig` wrote.
    """
    target = Path(path)
    reason = kc.why_not_overwrite(target, owner(spec))
    if reason:
        get_run_logger().warning("kubeconfig kept: %s", reason)
        return False
    existed = target.exists()
    target.unlink(missing_ok=True)
    return existed
