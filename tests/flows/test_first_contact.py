"""First contact with a real project (issue 22): a custom mode VPC made through Google's discovery
client, and a project whose regional CPU quota is a new project's. Two `up_mesh` runs: one that
builds and verifies the mesh, one that preflight stops before anything is created."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httplib2
import pytest
import yaml
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from flows.mesh import up_mesh
from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.errors import QuotaExceeded
from meshwright.sandbox.world import World
from meshwright.spec import Target
from meshwright.status import list_clusters
from tests.support import FAST, PROJECT, register

pytestmark = pytest.mark.usefixtures("meshwright_home")
DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"


def discovered(world: World, api: str) -> Any:
    """Google's discovery-based client (google-api-python-client) against the sandbox."""
    if api == "compute":
        options = {"api_endpoint": world.base_url() + "/compute/v1/"}
        return discovery.build(
            "compute", "v1", static_discovery=True, http=httplib2.Http(), client_options=options
        )
    options = {"api_endpoint": world.base_url() + "/"}
    return discovery.build(
        "container", "v1", static_discovery=True, credentials=AnonymousCredentials(), client_options=options
    )


def spec_file(directory: Path, **changes: Any) -> str:
    data = {**yaml.safe_load((DEPLOYMENTS / "sandbox.yaml").read_text()), **changes}
    path = directory / "mesh.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_a_mesh_comes_up_on_a_custom_mode_vpc_that_refuses_a_bare_cluster(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    compute = discovered(sandbox, "compute")
    compute.networks().insert(
        project=PROJECT, body={"name": "corp", "autoCreateSubnetworks": False}
    ).execute()
    assert compute.networks().get(project=PROJECT, network="corp").execute()["autoCreateSubnetworks"] is False
    bare = {"cluster": {"name": "bare", "network": "corp", "initialNodeCount": 1}}
    clusters = discovered(sandbox, "container").projects().locations().clusters()
    with pytest.raises(HttpError) as refused:
        clusters.create(parent=f"projects/{PROJECT}/locations/us-central1-a", body=bare).execute()
    assert refused.value.resp.status == 400
    assert "uses manual subnet mode and requires specifying a subnetwork" in str(refused.value)

    report = up_mesh(
        spec=spec_file(tmp_path, network="corp"), kubeconfig=str(tmp_path / "kc"), connection=target
    )

    proof = report.verification
    assert proof is not None
    assert proof.ok
    assert proof.traffic is not None
    assert set(proof.traffic.served) == {"central", "west"}  # reviews v1/v2 in central, v3 in west
    made = {c.name: c.subnetwork for c in list_clusters(target, PROJECT, step="test")}
    assert set(made) == {"central", "west", "east"}
    assert all(subnet.startswith(f"gke-{name}-subnet-") for name, subnet in made.items())


@pytest.fixture
def new_project(tmp_path: Path) -> Iterator[MeshwrightTarget]:
    """A sandbox whose project has a new project's 24 CPUS in us-central1."""
    world = World(tmp_path / "sandbox", latency=FAST, quotas={"us-central1": {"CPUS": 24.0}}).start()
    register(world)
    clients.reset_cache()
    yield MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(world.layout.root))
    world.stop()
    clients.reset_cache()


def test_up_past_the_regional_cpu_quota_fails_before_any_cluster_exists(
    new_project: MeshwrightTarget, tmp_path: Path
) -> None:
    asks_32 = [
        {"name": "central", "location": "us-central1-a", "nodes": 4, "machine_type": "e2-standard-4"},
        {
            "name": "west",
            "location": "us-central1-b",
            "nodes": 4,
            "machine_type": "e2-standard-4",
            "primary": "central",
        },
    ]
    path = spec_file(tmp_path, clusters=asks_32, bookinfo=None)
    with pytest.raises(QuotaExceeded) as short:
        up_mesh(spec=path, kubeconfig=str(tmp_path / "kc"), connection=new_project)
    assert "us-central1 CPUS: the spec asks 32, 24 available" in str(short.value)
    assert list_clusters(new_project, PROJECT, step="test") == []
