"""Reading a spec file: size cap, UTF-8 only, and paths in it relative to the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshwright.errors import SpecInvalid
from meshwright.spec import MAX_SPEC_BYTES, load_spec

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "deployments" / "multi-primary.yaml").read_text()


def only_problem(path: Path) -> str:
    with pytest.raises(SpecInvalid) as caught:
        load_spec(path)
    assert len(caught.value.problems) == 1
    return str(caught.value.problems[0])


def test_binary_file_is_one_problem_naming_the_byte(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(b"name: x\n\xff\xfe\x00\x01")
    assert only_problem(spec) == "not UTF-8 text (byte 0xff at offset 8); a spec is a YAML file"


def test_endless_file_is_read_only_up_to_the_cap() -> None:
    assert only_problem(Path("/dev/zero")) == "the spec is larger than 1024 KiB; is this the right file?"


def test_file_just_over_the_cap_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_text(GOOD + "#" * (MAX_SPEC_BYTES - len(GOOD.encode()) + 1))
    assert "larger than 1024 KiB" in only_problem(spec)


def test_control_characters_in_utf8_are_a_yaml_problem_on_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(b"name: x\x00\n")
    problem = only_problem(spec)
    assert problem.startswith("not valid YAML: unacceptable character #x0000")
    assert "\n" not in problem


def test_deeply_nested_yaml_is_one_problem(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("[" * 200_000)
    assert only_problem(spec).startswith("not valid YAML")


def test_a_directory_cannot_be_read(tmp_path: Path) -> None:
    assert only_problem(tmp_path).startswith("cannot read the spec: Is a directory")


def test_root_ca_paths_resolve_against_the_spec_directory(tmp_path: Path) -> None:
    spec = tmp_path / "mesh" / "spec.yaml"
    spec.parent.mkdir()
    spec.write_text(GOOD + "\nistio:\n  root_ca: {cert: ca/root.pem, key: /abs/root.key}\n")
    root_ca = load_spec(spec).istio.root_ca
    assert root_ca is not None
    assert (root_ca.cert, root_ca.key) == (str(tmp_path / "mesh" / "ca" / "root.pem"), "/abs/root.key")
