"""Bad specs and the exact problems each must produce; good specs and their computed topology."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshwright.errors import SpecInvalid
from meshwright.spec import Target, load_spec, parse_duration, parse_spec, validate_spec

ROOT = Path(__file__).resolve().parents[2]
GOOD: dict[str, Any] = yaml.safe_load((ROOT / "deployments" / "sandbox.yaml").read_text())


def problems_of(data: Any) -> list[str]:
    with pytest.raises(SpecInvalid) as caught:
        validate_spec(data)
    return [str(p) for p in caught.value.problems]


def edited(**changes: Any) -> dict[str, Any]:
    """The good spec with dotted-path edits applied (a value of ... deletes the field)."""
    data = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is ...:
            del node[int(last) if last.isdigit() else last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    return data


BAD = [
    (
        edited(clusters__2__primary="centrl"),
        ["clusters[2].primary: names no cluster of this mesh"],
    ),
    (
        edited(clusters__1__name="central"),
        [
            "clusters[1].name: already the name of clusters[0]",
            "clusters[1].primary: a cluster cannot be its own primary; omit the field",
            "bookinfo.placement.west: not a cluster of this mesh",
        ],
    ),
    (
        edited(clusters__1__primary="east"),
        ["clusters[1].primary: names a remote (clusters[2]); a primary must have no primary"],
    ),
    (
        edited(clusters__0__primary="west"),
        [
            "clusters[0].primary: names a remote (clusters[1]); a primary must have no primary",
            "clusters[1].primary: names a remote (clusters[0]); a primary must have no primary",
            "clusters[2].primary: names a remote (clusters[0]); a primary must have no primary",
            "clusters: at least one cluster must be a primary (a cluster without `primary`)",
        ],
    ),
    (
        edited(clusters__0__name="Central_1"),
        [
            "clusters[0].name: cluster name must be lowercase letters, digits and hyphens, "
            "start with a letter and not end with a hyphen",
            "clusters[1].primary: names no cluster of this mesh",
            "clusters[2].primary: names no cluster of this mesh",
            "bookinfo.placement.central: not a cluster of this mesh",
        ],
    ),
    (
        edited(clusters__0__name="c" * 41),
        [
            "clusters[0].name: cluster name is longer than 40 characters",
            "clusters[1].primary: names no cluster of this mesh",
            "clusters[2].primary: names no cluster of this mesh",
            "bookinfo.placement.central: not a cluster of this mesh",
        ],
    ),
    (
        edited(project="demo"),
        [
            "project: not a GCP project id (6 to 30 of lowercase letters, digits and hyphens, "
            "starting with a letter, not ending with a hyphen)"
        ],
    ),
    (
        edited(name="m" * 48),
        ["name: mesh name is longer than 47 characters"],
    ),
    (
        edited(clusters__1__location="mars-north"),
        ["clusters[1].location: neither a GCP zone (us-central1-a) nor a region (us-central1)"],
    ),
    (
        edited(clusters__0__pod_cidr="8.8.0.0/14"),
        ["clusters[0].pod_cidr: not a private (RFC 1918) range"],
    ),
    (
        edited(clusters__0__pod_cidr="10.8.0.1/14"),
        [
            "clusters[0].pod_cidr: not a well-formed IPv4 CIDR block "
            "(host bits set: the address must be the network's first, like 10.8.0.0/14)"
        ],
    ),
    (
        edited(clusters__1__pod_cidr="10.10.0.0/16"),
        ["clusters[1].pod_cidr: overlaps clusters[0].pod_cidr"],
    ),
    (
        edited(clusters__2__services_cidr="10.9.0.0/20"),
        ["clusters[2].services_cidr: overlaps clusters[0].pod_cidr"],
    ),
    (
        edited(clusters__0__labels={"Team": "x", "meshwright-mesh": "y", "ok": "Bad Value"}),
        [
            "clusters[0].labels: label key Team breaks GCP label rules (lowercase letter first, a-z 0-9 _ -); "
            "label key meshwright-mesh is reserved for meshwright; "
            "the value of label ok breaks GCP label rules (at most 63 of a-z 0-9 _ -)"
        ],
    ),
    (
        edited(clusters__0__nodes=0),
        ["clusters[0].nodes: Input should be greater than or equal to 1"],
    ),
    (
        edited(clusters__0__zone="us-central1-a"),
        ["clusters[0].zone: unknown field (check the spelling)"],
    ),
    (
        edited(tll="6h"),
        ["tll: unknown field (check the spelling)"],
    ),
    (
        edited(ttl="forever"),
        ["ttl: not a duration like 30m, 6h or 1d12h"],
    ),
    (
        edited(target="aws"),
        ["target: Input should be 'sandbox' or 'gke'"],
    ),
    (
        edited(istio__version="1.5.0"),
        ["istio.version: not a supported Istio version (1.20.0 to 1.39.x)"],
    ),
    (
        edited(bookinfo__placement__west=["reviews-v4"]),
        [
            "bookinfo.placement.west[0]: not a Bookinfo workload "
            "(known: productpage-v1, details-v1, reviews-v1, reviews-v2, reviews-v3, ratings-v1)"
        ],
    ),
    (
        edited(bookinfo__placement__east=["details-v1"], bookinfo__placement__north=["ratings-v1"]),
        ["bookinfo.placement.north: not a cluster of this mesh"],
    ),
    (
        edited(bookinfo__placement__east=[]),
        ["bookinfo.placement: 'productpage-v1' calls 'details', but no details workload is placed"],
    ),
    (
        edited(bookinfo__placement__central=["productpage-v1", "reviews-v1", "reviews-v2"]),
        [
            "bookinfo.placement: 'reviews-v2' calls 'ratings', but no ratings workload is placed",
            "bookinfo.placement: 'reviews-v3' calls 'ratings', but no ratings workload is placed",
        ],
    ),
    (
        edited(clusters=...),
        ["clusters: required field is missing"],
    ),
]


@pytest.mark.parametrize(("data", "expected"), BAD, ids=[e[0] for _, e in BAD])
def test_bad_spec_reports_exact_problems(data: dict[str, Any], expected: list[str]) -> None:
    assert problems_of(data) == expected


def test_every_problem_is_reported_at_once() -> None:
    data = edited(project="x", clusters__2__primary="centrl", clusters__1__location="nowhere", name="Bad")
    assert [p.split(":")[0] for p in problems_of(data)] == [
        "name",
        "project",
        "clusters[1].location",
        "clusters[2].primary",
    ]


def test_yaml_syntax_error_names_line() -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse_spec("name: x\nclusters: [\n")
    assert caught.value.problems[0].path.startswith("line ")


def test_missing_file_is_one_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(SpecInvalid) as caught:
        load_spec(tmp_path / "nope.yaml")
    assert "cannot read the spec" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "mesh", "target", "clusters"),
    [
        ("sandbox.yaml", "bookinfo-mesh", Target.SANDBOX, ["central", "west", "east"]),
        ("gke-example.yaml", "bookinfo-mesh", Target.GKE, ["central", "west", "east"]),
        ("multi-primary.yaml", "dual-mesh", Target.SANDBOX, ["alpha", "beta"]),
    ],
)
def test_shipped_examples_load_with_their_mesh_target_and_clusters(
    name: str, mesh: str, target: Target, clusters: list[str]
) -> None:
    spec = load_spec(ROOT / "deployments" / name)
    assert (spec.name, spec.target, [c.name for c in spec.clusters]) == (mesh, target, clusters)


def test_roles_and_topology_are_computed() -> None:
    classic = load_spec(ROOT / "deployments" / "sandbox.yaml")
    assert [c.name for c in classic.primaries] == ["central"]
    assert [c.name for c in classic.remotes] == ["west", "east"]
    assert classic.topology == ["primary-remote"]
    assert classic.mesh_id == "bookinfo-mesh"
    dual = load_spec(ROOT / "deployments" / "multi-primary.yaml")
    assert dual.topology == ["multi-primary", "multi-network"]


@pytest.mark.parametrize(("text", "seconds"), [("6h", 21600), ("90m", 5400), ("1d12h", 129600), ("45s", 45)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["\u0661h", "\uff16h", "1\u0663m", "6h\n5m"])
def test_durations_take_ascii_digits_only(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ttl", "\u0661h"),
        ("clusters__0__nodes", "\u0663"),
        ("clusters__0__pod_cidr", "\u0661\u0660.8.0.0/14"),
    ],
)
def test_non_ascii_digits_are_refused_in_every_field(field: str, value: str) -> None:
    assert [p.split(":")[0] for p in problems_of(edited(**{field: value}))] == [
        field.replace("__0__", "[0].")
    ]


def test_charts_default_to_the_target_default() -> None:
    assert validate_spec(edited(istio={})).istio.charts is None


@pytest.mark.parametrize(
    "charts",
    [
        "https://istio-release.storage.googleapis.com/charts",
        "oci://gcr.io/istio-release/charts",
        "/opt/charts",
    ],
)
def test_charts_accept_helm_repo_oci_ref_or_directory(charts: str) -> None:
    assert validate_spec(edited(istio={"charts": charts})).istio.charts == charts


def test_relative_charts_directory_resolves_against_the_spec_directory(tmp_path: Path) -> None:
    spec = validate_spec(edited(istio={"charts": "charts"}), base_dir=tmp_path)
    assert spec.istio.charts == str(tmp_path / "charts")


@pytest.mark.parametrize(
    ("charts", "problem"),
    [
        (
            "ftp://example.com/charts",
            "istio.charts: charts come from an http(s) Helm repository, "
            "an oci:// reference or a local directory",
        ),
        ("https:///charts", "istio.charts: a URL without a host"),
        ("oci://", "istio.charts: an oci:// reference without a repository"),
    ],
)
def test_bad_charts_source_is_named(charts: str, problem: str) -> None:
    assert problems_of(edited(istio={"charts": charts})) == [problem]


def test_root_ca_needs_both_cert_and_key() -> None:
    assert problems_of(edited(istio={"root_ca": {"cert": "root.pem"}})) == [
        "istio.root_ca.key: required field is missing"
    ]


def test_root_ca_files_are_not_read_at_validation() -> None:
    spec = validate_spec(edited(istio={"root_ca": {"cert": "/nowhere/root.pem", "key": "/nowhere/root.key"}}))
    assert spec.istio.root_ca is not None
    assert spec.istio.root_ca.cert == "/nowhere/root.pem"


WRONG_TYPES = [
    (
        "bookinfo:\n  placement:\n    central: [[x]]\n",
        ["bookinfo.placement.central[0]: Input should be a valid string"],
    ),
    (
        "bookinfo:\n  placement:\n    central: [{a: 1}, reviews-v4]\n",
        [
            "bookinfo.placement.central[0]: Input should be a valid string",
            "bookinfo.placement.central[1]: not a Bookinfo workload "
            "(known: productpage-v1, details-v1, reviews-v1, reviews-v2, reviews-v3, ratings-v1)",
        ],
    ),
    (
        "clusters:\n  - {name: a, location: us-west1-b, primary: [a]}\n",
        ["clusters[0].primary: Input should be a valid string"],
    ),
    (
        "clusters:\n  - {name: a, location: us-west1-b}\n  - {name: b, location: us-west1-b, primary: {a: 1}}\n",
        ["clusters[1].primary: Input should be a valid string"],
    ),
    (
        "clusters:\n  - {name: [a], location: us-west1-b, pod_cidr: {a: 1}}\n  - {name: b, location: us-west1-b, primary: a}\n",
        [
            "clusters[0].name: Input should be a valid string",
            "clusters[0].pod_cidr: Input should be a valid string",
        ],
    ),
]


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    WRONG_TYPES,
    ids=["placement-list", "placement-mapping", "primary-list", "primary-mapping", "name-and-cidr"],
)
def test_a_value_of_the_wrong_type_is_a_problem_with_its_path_not_a_crash(
    yaml_text: str, expected: list[str]
) -> None:
    """The rules between fields read typed values only: a list or a mapping where a name belongs is
    reported by its type, and no rule guesses from it (a cluster whose name is unreadable may be the
    one a reference names)."""
    head = "name: m\nproject: demo-project\n"
    if "clusters:" not in yaml_text:
        head += "clusters:\n  - {name: central, location: us-central1-a}\n"
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(head + yaml_text)
    assert [str(p) for p in caught.value.problems] == expected


def test_wrong_types_and_broken_references_are_reported_together() -> None:
    data = edited(clusters__0__labels=[["x"]], clusters__2__primary="centrl")
    assert [p.split(":")[0] for p in problems_of(data)] == ["clusters[0].labels", "clusters[2].primary"]


MARK = "Zq7-Secret!"  # breaks every rule it is put under


def test_problems_never_quote_a_value_and_show_keys_short_and_escaped() -> None:
    """A spec may be any file on the runner, and its problems reach logs and the Prefect UI."""
    long_key = "k" * 45 + MARK
    data = {
        **dict.fromkeys(("name", "project", "network", "ttl", "target"), MARK),
        "istio": {"version": MARK, "charts": f"ftp://{MARK}", "mesh_id": MARK},
        "clusters": [
            {
                **dict.fromkeys(("name", "location", "nodes", "machine_type", "network", "primary"), MARK),
                "pod_cidr": MARK,
                "services_cidr": f"10.0.0.1/{MARK}",
                "labels": {"ok": MARK},
            },
            {"name": "b", "location": "us-west1-b", "primary": [MARK], "pod_cidr": {MARK: MARK}},
        ],
        "bookinfo": {"namespace": MARK, "placement": {"b": [MARK, {MARK: MARK}], long_key: [MARK]}},
        long_key: MARK,
        "\x1b[2J\u202etxt": MARK,
    }
    with pytest.raises(SpecInvalid) as caught:
        validate_spec(data)
    message = str(caught.value)
    assert MARK not in message
    assert message.isascii()
    assert all(line.isprintable() for line in message.splitlines())
    assert f"  '{'k' * 36}...: unknown field (check the spelling)" in message  # 40 characters
    assert "'\\x1b[2J\\u202etxt': unknown field (check the spelling)" in message
    assert len(caught.value.problems) >= 20


def test_a_key_of_the_wrong_type_is_named_as_a_key() -> None:
    data = edited(bookinfo__placement={1: ["productpage-v1"]})
    assert problems_of(data) == ["bookinfo.placement.1: this key: Input should be a valid string"]
