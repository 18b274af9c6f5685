"""A three-cluster mesh on the in-process sandbox, with the Istio objects the control-plane code reads.

central and east are primaries, west is central's remote. The Istio objects (namespace, reader
service account, cacerts, istiod Deployment and Services, the east-west gateway and the remote's
istiod EndpointSlice) are created directly with the Kubernetes client, as the charts would render
them, so these tests do not depend on the Helm installs (helpers in support.py; `sandbox` and
`target` in tests/conftest.py).
"""

from __future__ import annotations

from functools import partial

import pytest

from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.models import ClusterAccess
from meshwright.pki import new_root_ca
from meshwright.sandbox.world import World
from meshwright.spec import MeshSpec
from tasks.clusters import cluster_request
from tasks.verify import locate_clusters
from tests.mesh.support import (
    eastwest_ip,
    install_istio_objects,
    istiod_ready,
    mesh_spec,
    point_remote_istiod,
)
from tests.support import wait_for


@pytest.fixture(autouse=True)
def outside_a_run(no_run_logger: None) -> None:
    """The tests here call task bodies outside a flow run (the verify flow's test makes its own)."""


@pytest.fixture
def spec() -> MeshSpec:
    return mesh_spec()


@pytest.fixture
def clusters(sandbox: World, target: MeshwrightTarget, spec: MeshSpec) -> dict[str, ClusterAccess]:
    """The mesh's clusters, RUNNING, with Istio's objects in place (no remote secret yet)."""
    gke = clients.cloud(target).container
    for c in spec.clusters:
        gke.create_cluster(
            parent=f"projects/{spec.project}/locations/{c.location}",
            cluster=cluster_request(spec, c, expires=None),
        )

    def running() -> dict[str, ClusterAccess | None] | None:
        found = locate_clusters.fn(spec, target=target)
        return found if all(a is not None and a.status == "RUNNING" for a in found.values()) else None

    found = wait_for(running, what="clusters RUNNING")
    accesses: dict[str, ClusterAccess] = {n: a for n, a in found.items() if a is not None}
    root = new_root_ca(common_name="Root CA", organization="Istio", key="ec")
    for c in spec.clusters:
        install_istio_objects(target, accesses[c.name], root=root.cert_pem, primary=c.primary is None)
    gateway_ip = wait_for(lambda: eastwest_ip(target, accesses["central"]), what="east-west address")
    point_remote_istiod(target, accesses["west"], gateway_ip)
    for name in ("central", "east"):
        wait_for(partial(istiod_ready, target, accesses[name]), what=f"istiod ready in {name}")
    return accesses
