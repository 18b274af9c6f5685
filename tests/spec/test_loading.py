"""Reading a spec file: where from, what kind of file, size cap, UTF-8 only, and paths in it
relative to the file."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshwright.errors import SpecInvalid
from meshwright.settings import settings
from meshwright.spec import MAX_SPEC_BYTES, as_spec, load_spec

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "deployments" / "multi-primary.yaml").read_text()
OUTSIDE = (
    "a spec path given to a flow must be under the project's deployments/ or a directory of "
    "MESHWRIGHT_SPEC_ROOTS; give the spec itself (the Run form's fields) instead"
)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The one directory MESHWRIGHT_SPEC_ROOTS allows besides deployments/ (settings are cached)."""
    allowed = tmp_path / "specs"
    allowed.mkdir()
    monkeypatch.setenv("MESHWRIGHT_SPEC_ROOTS", f"/nonexistent{os.pathsep}{allowed}")
    settings.cache_clear()
    yield allowed
    settings.cache_clear()


def only_problem(path: Path, *, confined: bool = True) -> str:
    with pytest.raises(SpecInvalid) as caught:
        load_spec(path, confined=confined)
    assert len(caught.value.problems) == 1
    return str(caught.value.problems[0])


def test_binary_file_is_one_problem_naming_the_byte(root: Path) -> None:
    spec = root / "spec.yaml"
    spec.write_bytes(b"name: x\n\xff\xfe\x00\x01")
    assert only_problem(spec) == "not UTF-8 text (byte 0xff at offset 8); a spec is a YAML file"


def test_a_device_is_refused_without_reading_it() -> None:
    assert only_problem(Path("/dev/zero"), confined=False) == (
        "the spec is not a regular file (a character device); is this the right file?"
    )


def test_a_fifo_is_refused_without_waiting_for_a_writer(root: Path) -> None:
    fifo = root / "spec.yaml"
    os.mkfifo(fifo)
    problems: list[str] = []
    reader = threading.Thread(target=lambda: problems.append(only_problem(fifo)), daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "load_spec blocked on a FIFO"
    assert problems == ["the spec is not a regular file (a FIFO); is this the right file?"]


def test_file_just_over_the_cap_is_refused(root: Path) -> None:
    spec = root / "big.yaml"
    spec.write_text(GOOD + "#" * (MAX_SPEC_BYTES - len(GOOD.encode()) + 1))
    assert only_problem(spec) == "the spec is larger than 1024 KiB; is this the right file?"


def test_control_characters_in_utf8_are_a_yaml_problem_on_one_line(root: Path) -> None:
    spec = root / "spec.yaml"
    spec.write_bytes(b"name: x\x00\n")
    problem = only_problem(spec)
    assert problem.startswith("not valid YAML: unacceptable character #x0000")
    assert "\n" not in problem


def test_deeply_nested_yaml_is_one_problem(root: Path) -> None:
    spec = root / "spec.yaml"
    spec.write_text("[" * 200_000)
    assert only_problem(spec).startswith("not valid YAML")


def test_a_directory_is_refused(root: Path) -> None:
    assert only_problem(root) == "the spec is not a regular file (a directory); is this the right file?"


def test_a_missing_file_is_one_clear_problem(root: Path) -> None:
    assert only_problem(root / "nope.yaml") == "cannot read the spec: No such file or directory"


def test_root_ca_paths_resolve_against_the_spec_directory(root: Path) -> None:
    spec = root / "mesh" / "spec.yaml"
    spec.parent.mkdir()
    spec.write_text(GOOD + "\nistio:\n  root_ca: {cert: ca/root.pem, key: /abs/root.key}\n")
    root_ca = load_spec(spec).istio.root_ca
    assert root_ca is not None
    assert (root_ca.cert, root_ca.key) == (str(root / "mesh" / "ca" / "root.pem"), "/abs/root.key")


def test_the_project_deployments_are_an_allowed_root(root: Path) -> None:
    assert load_spec(ROOT / "deployments" / "multi-primary.yaml").name == "dual-mesh"


def test_a_spec_path_outside_the_roots_is_not_read(root: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD)
    assert only_problem(spec) == OUTSIDE
    assert only_problem(root / ".." / "spec.yaml") == OUTSIDE
    assert only_problem(Path("/etc/passwd")) == OUTSIDE


def test_a_link_under_a_root_cannot_lead_out_of_it(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.yaml"
    target.write_text(GOOD)
    (root / "spec.yaml").symlink_to(target)
    assert only_problem(root / "spec.yaml") == OUTSIDE


def test_a_flow_given_a_path_reads_it_only_under_a_root(root: Path, tmp_path: Path) -> None:
    (root / "spec.yaml").write_text(GOOD)
    (tmp_path / "spec.yaml").write_text(GOOD)
    assert as_spec(str(root / "spec.yaml")).name == "dual-mesh"
    with pytest.raises(SpecInvalid, match="must be under the project's deployments/"):
        as_spec(str(tmp_path / "spec.yaml"))


def test_the_path_a_cli_user_names_is_read_wherever_it_is(root: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD)
    assert load_spec(spec, confined=False).name == "dual-mesh"


def test_deployments_of_the_working_directory_are_an_allowed_root(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed image runs its flows from its copy of the project (prefect.yaml: deployments/...)."""
    (tmp_path / "deployments").mkdir()
    (tmp_path / "deployments" / "spec.yaml").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    assert as_spec("deployments/spec.yaml").name == "dual-mesh"
