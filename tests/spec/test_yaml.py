"""A spec's YAML: what PyYAML's safe loader would accept silently or crash on is one clear problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshwright.errors import SpecInvalid
from meshwright.spec import parse_spec
from meshwright.spec_yaml import MAX_NODES

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "deployments" / "sandbox.yaml").read_text()


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(text)
    return [str(p) for p in caught.value.problems]


def test_a_key_given_twice_is_named_with_both_lines() -> None:
    assert problems_of(GOOD + "name: again\n") == ["name: this key is given twice (lines 2 and 28); keep one"]


def test_a_key_given_twice_deep_in_the_spec_has_its_path() -> None:
    text = GOOD.replace("    location: us-west1-b\n", "    location: us-west1-b\n    location: us-west1-c\n")
    assert problems_of(text) == ["clusters[1].location: this key is given twice (lines 17 and 18); keep one"]


def test_a_key_given_twice_is_reported_with_the_other_problems() -> None:
    assert problems_of("name: m\nname: Bad\nproject: x\n") == [
        "name: this key is given twice (lines 1 and 2); keep one",
        "name: mesh name must be lowercase letters, digits and hyphens, "
        "start with a letter and not end with a hyphen",
        "project: not a GCP project id (6 to 30 of lowercase letters, digits and hyphens, "
        "starting with a letter, not ending with a hyphen)",
        "clusters: required field is missing",
    ]


def test_keys_equal_once_read_are_the_same_key() -> None:
    """`1` and `0x1` (or `true` and `1`) land on one entry of the mapping, as YAML reads them."""
    text = GOOD.replace("labels: {team: mesh}", "labels: {1: a, 0x1: b}")
    assert "clusters[0].labels.1: this key is given twice (lines 15 and 15); keep one" in problems_of(text)


def test_a_merged_key_may_be_overridden() -> None:
    text = GOOD.replace("labels: {team: mesh}", "labels: {<<: {team: x}, team: mesh}")
    assert parse_spec(text).clusters[0].labels == {"team": "mesh"}


@pytest.mark.parametrize(
    ("value", "kind"), [("2001-02-30", "timestamp"), ("!!float x", "float"), ("!!timestamp x", "timestamp")]
)
def test_a_value_its_tag_cannot_hold_is_a_yaml_problem_at_its_line(value: str, kind: str) -> None:
    assert problems_of(f"name: m\nttl: {value}\n") == [
        f"line 2, column 6: not valid YAML: the value cannot be read as {kind}"
    ]


def test_aliases_that_expand_beyond_any_spec_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 6)]
    assert problems_of("\n".join(lines)) == [
        f"more than {MAX_NODES} values once its aliases are expanded; a spec is far smaller"
    ]


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    assert problems_of("clusters: &c [*c]\n")[0].startswith("more than")


def test_a_yaml_problem_never_quotes_the_text() -> None:
    problems = problems_of('name: Zq7-Secret\n  project: "Zq7-Other\n')
    assert len(problems) == 1
    assert problems[0].startswith("line 2, column 10: not valid YAML: ")
    assert "Zq7" not in problems[0]


def test_two_documents_are_one_problem() -> None:
    assert problems_of("name: m\n---\nname: n\n") == [
        "line 2, column 1: not valid YAML: expected a single document in the stream, but found another document"
    ]
