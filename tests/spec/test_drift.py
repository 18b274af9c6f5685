"""The difference between a spec and what exists (meshwright.drift): pure, from observed facts."""

from __future__ import annotations

from meshwright.drift import Observed, ObservedCluster, diff, render_text
from meshwright.spec import validate_spec

SPEC = validate_spec(
    {
        "name": "d",
        "project": "demo-project",
        "clusters": [
            {"name": "hub", "location": "us-central1-a"},
            {"name": "west", "location": "us-west1-b", "primary": "hub"},
        ],
        "bookinfo": {
            "placement": {"hub": ["productpage-v1", "details-v1"], "west": ["reviews-v1", "ratings-v1"]}
        },
    }
)
RELEASES = {"istio-base": "1.30.3", "istiod-1-30-3": "1.30.3"}


def as_built(**changes: object) -> Observed:
    hub = ObservedCluster(
        name="hub",
        location="us-central1-a",
        status="RUNNING",
        pod_cidr="10.0.0.0/14",
        remote_secrets=["west"],
        workloads=["details-v1", "productpage-v1"],
        releases={**RELEASES, "istio-eastwestgateway": "1.30.3"},
    )
    west = ObservedCluster(
        name="west",
        location="us-west1-b",
        status="RUNNING",
        pod_cidr="10.4.0.0/14",
        workloads=["ratings-v1", "reviews-v1"],
        releases=RELEASES,
    )
    observed = Observed(mesh="d", clusters=[hub, west], firewall_sources=["10.0.0.0/14", "10.4.0.0/14"])
    return observed.model_copy(update=changes)


def test_a_mesh_that_is_its_spec_has_nothing_to_change() -> None:
    drift = diff(SPEC, as_built())
    assert drift.changes == []
    assert render_text(drift) == "mesh d: nothing to change"


def test_no_mesh_yet_is_said_as_such() -> None:
    assert render_text(diff(SPEC, Observed(mesh="d"))) == "mesh d does not exist yet: up builds all of it"


def test_a_cluster_left_behind_is_a_delete_that_needs_prune_and_its_range_leaves_the_rule() -> None:
    built = as_built()
    east = ObservedCluster(name="east", location="us-east1-b", status="RUNNING", pod_cidr="10.8.0.0/14")
    hub = built.clusters[0].model_copy(update={"remote_secrets": ["east", "someone-elses", "west"]})
    observed = built.model_copy(
        update={
            "clusters": [hub, built.clusters[1], east],
            "firewall_sources": [*(built.firewall_sources or []), "10.8.0.0/14"],
        }
    )
    drift = diff(SPEC, observed)
    assert [c.line() for c in drift.changes] == [
        "delete cluster east (us-east1-b, not in the spec: needs --prune)",
        "remove firewall-source 10.8.0.0/14 in meshwright-d-pods (east)",
        "remove remote-secret istio-remote-secret-east in hub",  # someone-elses is not the mesh's
    ]
    assert drift.deletes == ["east"]
    assert "up deletes east only with --prune" in render_text(drift)


def test_a_moved_workload_and_an_older_release_are_named() -> None:
    west = (
        as_built()
        .clusters[1]
        .model_copy(update={"releases": {"istio-base": "1.29.8", "istiod-1-30-3": "1.30.3"}})
    )
    hub = (
        as_built()
        .clusters[0]
        .model_copy(update={"workloads": ["details-v1", "productpage-v1", "reviews-v1"]})
    )
    drift = diff(SPEC, as_built(clusters=[hub, west]))
    assert [c.line() for c in drift.changes] == [
        "upgrade release istio-base in west (1.29.8 -> 1.30.3)",
        "remove workload reviews-v1 in hub",
    ]


def test_a_new_istio_version_is_an_upgrade_by_revision_and_an_unrevisioned_istiod_is_migrated() -> None:
    old = {"istio-base": "1.29.8", "istiod-1-29-8": "1.29.8"}
    west = as_built().clusters[1].model_copy(update={"releases": old})
    hub = as_built().clusters[0].model_copy(update={"releases": {"istio-base": "1.29.8", "istiod": "1.29.8"}})
    drift = diff(SPEC, as_built(clusters=[hub, west]))
    assert [c.line() for c in drift.changes if "istiod" in c.what] == [
        "upgrade release istiod-1-30-3 in hub (by revision: unrevisioned istiod -> 1-30-3; tag default moves, "
        "then the old go)",
        "upgrade release istiod-1-30-3 in west (by revision: 1-29-8 -> 1-30-3; tag default moves, then the old go)",
    ]


def test_bookinfos_policy_missing_or_in_another_mode_is_set_and_an_unread_one_is_not_guessed() -> None:
    built = as_built()
    hub = built.clusters[0].model_copy(update={"mtls": "STRICT"})
    west = built.clusters[1].model_copy(update={"mtls": "PERMISSIVE"})
    assert [c.line() for c in diff(SPEC, built.model_copy(update={"clusters": [hub, west]})).changes] == [
        "set peer-authentication default in west (PERMISSIVE -> STRICT)"
    ]
    missing = built.clusters[0].model_copy(update={"mtls": ""})
    assert [c.line() for c in diff(SPEC, built.model_copy(update={"clusters": [missing, west]})).changes] == [
        "set peer-authentication default in hub (none -> STRICT)",
        "set peer-authentication default in west (PERMISSIVE -> STRICT)",
    ]
    assert diff(SPEC, built).changes == []  # mtls None: not read, nothing said
