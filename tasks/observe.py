"""The mesh as it exists, read at the start of `up` to say (and publish) what the run will change."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from meshwright import observe
from meshwright.clients import MeshwrightTarget
from meshwright.drift import Observed
from meshwright.spec import MeshSpec
from tasks.common import RETRYING


@task(cache_policy=NO_CACHE, **RETRYING)
def observe_mesh(spec: MeshSpec, *, target: MeshwrightTarget) -> Observed:
    """What exists of the mesh: clusters, firewall sources, remote secrets, Bookinfo, releases.

    Args:
        spec: the validated mesh spec (which mesh, which project).
        target: where the mesh is built.
    """
    return observe.observe(spec, target)
