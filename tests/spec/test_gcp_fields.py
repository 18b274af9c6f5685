"""Fields a real GCP project needs (subnetwork, the nodes' service account) and what a region means
for `nodes`: validate and plan say the total, validate warns when a subnet would be too full."""

from __future__ import annotations

import pytest

from meshwright.errors import SpecInvalid
from meshwright.plan import build_plan, render_text
from meshwright.spec import validate_spec

BASE = {"name": "m1", "project": "demo-project"}


def spec(*clusters: dict[str, object]) -> dict[str, object]:
    return {**BASE, "clusters": list(clusters)}


def test_nodes_in_a_region_are_per_zone_and_validate_and_plan_say_the_total() -> None:
    mesh = validate_spec(
        spec(
            {"name": "central", "location": "us-central1", "nodes": 3},
            {"name": "edge", "location": "us-east1-b"},
        )
    )
    central, edge = mesh.clusters
    assert (central.total_nodes, edge.total_nodes) == (9, 3)
    assert "central (primary, us-central1, 9 nodes (3 per zone x 3 zones))" in mesh.summary()
    assert "edge (primary, us-east1-b, 3 nodes)" in mesh.summary()
    assert "12 nodes in all" in mesh.summary()
    assert "nodes=9 nodes (3 per zone x 3 zones) x e2-standard-4" in render_text(build_plan(mesh))


def test_subnetwork_and_service_account_are_checked_with_the_rest() -> None:
    with pytest.raises(SpecInvalid) as bad:
        validate_spec(
            spec(
                {
                    "name": "central",
                    "location": "us-central1-a",
                    "subnetwork": "Bad_Sub",
                    "service_account": "me",
                }
            )
        )
    assert [str(p) for p in bad.value.problems] == [
        "clusters[0].subnetwork: subnetwork must be lowercase letters, digits and hyphens, start with a letter "
        "and not end with a hyphen",
        "clusters[0].service_account: not a service account email (NAME@PROJECT.iam.gserviceaccount.com)",
    ]
    good = validate_spec(
        spec(
            {
                "name": "central",
                "location": "us-central1-a",
                "subnetwork": "corp-central",
                "service_account": "mesh-nodes@demo-project.iam.gserviceaccount.com",
            }
        )
    )
    assert good.clusters[0].subnetwork == "corp-central"


def test_validate_warns_when_one_subnet_would_need_more_than_thirty_secondary_ranges() -> None:
    many = [
        {"name": f"c{i:02d}", "location": "us-central1-a", "primary": "c00" if i else None} for i in range(31)
    ]
    mesh = validate_spec(spec(*({k: v for k, v in c.items() if v is not None} for c in many)))
    assert mesh.warnings() == [
        "31 secondary ranges in the auto mode subnet of us-central1, which holds at most 30: give some of its "
        "clusters their own `subnetwork`"
    ]
    assert validate_spec(spec({"name": "central", "location": "us-central1"})).warnings() == []
