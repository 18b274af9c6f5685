"""mesh_smoke_test: the nightly ephemeral mesh test. Provision, (later: install Istio, Bookinfo,
verify), and always tear down, whatever happened before."""

from __future__ import annotations

from prefect import flow

from flows.provision import provision_mesh
from flows.teardown import teardown_mesh
from meshwright.clients import MeshwrightTarget
from meshwright.models import ProvisionReport


@flow(name="mesh-smoke-test")
def mesh_smoke_test(spec: str, connection: MeshwrightTarget | str | None = None) -> ProvisionReport:
    """Provision the mesh of `spec`, then tear it down even if provisioning failed.

    Args:
        spec: path of the mesh spec (YAML); give it a `ttl` so the reaper covers a killed run.
        connection: a MeshwrightTarget block or the name of a saved one; default: the spec's target.
    """
    try:
        return provision_mesh(spec, connection=connection)
    finally:
        teardown_mesh(spec, wait=True, connection=connection)
