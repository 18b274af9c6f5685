"""The verify_mesh flow, run for real once healthy and once broken: its table artifacts (control plane,
links), its failure, the report it keeps for the CLI when it fails, no token kept."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from prefect.settings import PREFECT_API_URL

from flows.verify import verify_mesh
from meshwright import naming
from meshwright.cli import runs
from meshwright.clients import MeshwrightTarget
from meshwright.models import ClusterAccess
from meshwright.remote_secrets import pairs
from meshwright.sandbox.mesh.clusterz import for_fleet
from meshwright.sandbox.world import World
from meshwright.spec import MeshSpec
from meshwright.verify import ControlPlaneBroken, VerifyReport
from tasks.remote_secrets import exchange_remote_secret
from tests.mesh.support import NS, core, mesh_spec

pytestmark = pytest.mark.usefixtures("harness")


@pytest.fixture
def spec_file(tmp_path: Path) -> str:
    path = tmp_path / "mesh.yaml"
    spec = mesh_spec()
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True)))
    return str(path)


def table(mesh: str, kind: str = "control-plane") -> list[dict[str, str]]:
    """The newest version of one of the mesh's tables."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"mesh-{mesh}-{kind}"])),
            sort=ArtifactSort.CREATED_DESC,
        )
    return json.loads(str(artifacts[0].data))


def test_verify_flow_publishes_the_table_and_fails_naming_each_problem(
    prefect_storage: Path,
    sandbox: World,
    target: MeshwrightTarget,
    spec: MeshSpec,
    clusters: dict[str, ClusterAccess],
    spec_file: str,
) -> None:
    sandbox.fleet.service_proxy = for_fleet(sandbox.fleet)
    for source, primary in pairs(spec):
        exchange_remote_secret.fn(clusters[source], clusters[primary], target=target)
    report = verify_mesh(spec=spec_file, connection=target)
    assert report.ok
    rows = table("m1")
    assert {(r["primary"], r["cluster"], r["status"]) for r in rows} == {
        ("central", "east", "synced"),
        ("central", "west", "synced"),
        ("east", "central", "synced"),
        ("east", "west", "synced"),
    }

    assert {(r["primary"], r["cluster"], r["ok"]) for r in table("m1", "links")} == {
        ("central", "east", "yes"),
        ("central", "west", "yes"),
        ("east", "central", "yes"),
        ("east", "west", "yes"),
    }

    core(target, clusters["east"]).delete_namespaced_secret("istio-remote-secret-west", NS)
    state = verify_mesh(spec=spec_file, connection=target, return_state=True)
    with pytest.raises(ControlPlaneBroken) as broken:
        state.result()
    assert str(broken.value).splitlines()[1:] == [
        "  east does not see west: not listed (remote secret istio-remote-secret-west: missing)"
    ]
    assert ("east", "west", "not listed") in {(r["primary"], r["cluster"], r["status"]) for r in table("m1")}
    with runs.connect(PREFECT_API_URL.value()) as api:  # what the CLI prints for the failed run
        kept_report = VerifyReport.model_validate(
            runs.kept_result(api, str(state.state_details.flow_run_id), naming.KEPT_REPORT)
        )
    assert not kept_report.ok
    assert [(k.primary, k.cluster, k.layer) for k in kept_report.links if not k.ok] == [
        ("east", "west", "remote secret")
    ]
    assert ("east", "west", "no") in {(r["primary"], r["cluster"], r["ok"]) for r in table("m1", "links")}

    token_secret = core(target, clusters["west"]).read_namespaced_secret(
        "istio-reader-service-account-istio-remote-secret-token", NS
    )
    token = base64.b64decode(token_secret.data["token"]).decode()
    kept = "".join(p.read_text(errors="ignore") for p in prefect_storage.rglob("*") if p.is_file())
    assert token not in kept + repr(rows) + report.model_dump_json()
