"""The kubeconfig of a mesh: one context per cluster, named after the cluster.

It holds credentials on the sandbox (a token), so it is written with mode 0600 and only its
path ever leaves this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from meshwright import clients
from meshwright.models import ClusterAccess
from meshwright.sandbox.store import write_secret
from meshwright.spec import MeshSpec


def kubeconfig(user: dict[str, Any], clusters: list[ClusterAccess]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": c.name,
                "cluster": {
                    "server": f"https://{c.endpoint}",
                    "certificate-authority-data": c.ca_certificate,
                },
            }
            for c in clusters
        ],
        "users": [{"name": c.name, "user": user} for c in clusters],
        "contexts": [{"name": c.name, "context": {"cluster": c.name, "user": c.name}} for c in clusters],
        "current-context": clusters[0].name if clusters else "",
        "preferences": {},
    }


@task(cache_policy=NO_CACHE)
def write_kubeconfig(spec: MeshSpec, clusters: list[ClusterAccess], path: str) -> str:
    """Write the mesh's kubeconfig (mode 0600). Returns its path, never its content."""
    user = clients.cloud(spec.target).kubeconfig_user()
    target = Path(path)
    write_secret(target, yaml.safe_dump(kubeconfig(user, clusters), sort_keys=False).encode())
    get_run_logger().info(
        "kubeconfig with contexts %s written to %s", ", ".join(c.name for c in clusters), target
    )
    return str(target)


@task(cache_policy=NO_CACHE)
def remove_kubeconfig(path: str) -> bool:
    """Remove a mesh's kubeconfig once its clusters are gone."""
    target = Path(path)
    existed = target.exists()
    target.unlink(missing_ok=True)
    return existed
