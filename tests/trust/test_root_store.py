"""The root is made once per mesh and found again: a 0600 file without a Prefect API, or the user's own."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.provision import preflight
from meshwright import naming, pki, trust
from meshwright.errors import InvalidRequest
from meshwright.spec import MeshSpec, validate_spec


def spec(**istio: object) -> MeshSpec:
    return validate_spec(
        {
            "name": "m1",
            "project": "demo-project",
            "istio": istio,
            "clusters": [{"name": "central", "location": "us-central1-a"}],
        }
    )


def test_without_a_prefect_api_the_root_is_a_0600_file_under_the_mesh(tmp_path: Path) -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        store = trust.store_for("m1", state_dir=tmp_path)
    assert isinstance(store, trust.FileStore)
    root, source = trust.ensure_root(spec(), store)
    key = tmp_path / "m1" / "root-ca" / "root-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes() == root.key_pem
    assert source.startswith("new")


def test_the_root_files_and_the_kubeconfig_live_in_meshwright_home(meshwright_home: Path) -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        store = trust.store_for("m1")
    assert store.where == f"files in {meshwright_home / 'm1' / 'root-ca'}"
    assert naming.default_kubeconfig("m1") == meshwright_home / "m1" / "kubeconfig"


def test_a_rerun_finds_the_same_root(tmp_path: Path) -> None:
    first, _ = trust.ensure_root(spec(), trust.FileStore(tmp_path / "m1" / "root-ca"))
    again, source = trust.ensure_root(spec(), trust.FileStore(tmp_path / "m1" / "root-ca"))
    assert pki.fingerprint(again.cert_pem) == pki.fingerprint(first.cert_pem)
    assert "root-ca" in source


def test_the_first_writer_wins_when_two_runs_race(tmp_path: Path) -> None:
    store = trust.FileStore(tmp_path / "m1" / "root-ca")
    first = store.create(pki.new_root_ca(key="rsa2048"))
    second = store.create(pki.new_root_ca(key="rsa2048"))
    assert second.cert_pem == first.cert_pem
    assert store.load() == first


def test_a_brought_root_is_used_and_nothing_is_stored(tmp_path: Path) -> None:
    mine = pki.new_root_ca(key="rsa2048")
    (tmp_path / "ca.pem").write_bytes(mine.cert_pem)
    (tmp_path / "ca-key.pem").write_bytes(mine.key_pem)
    given = spec(root_ca={"cert": str(tmp_path / "ca.pem"), "key": str(tmp_path / "ca-key.pem")})
    root, source = trust.ensure_root(given, trust.FileStore(tmp_path / "state"))
    assert root.cert_pem == mine.cert_pem
    assert source == "istio.root_ca"
    assert not (tmp_path / "state").exists()


def test_an_unreadable_brought_root_is_one_clear_error_naming_both_files(tmp_path: Path) -> None:
    given = spec(root_ca={"cert": str(tmp_path / "missing.pem"), "key": str(tmp_path / "k.pem")})
    with pytest.raises(InvalidRequest) as caught:
        trust.ensure_root(given, trust.FileStore(tmp_path))
    assert caught.value.message == (
        f"istio.root_ca.cert: cannot read {tmp_path / 'missing.pem'}: No such file or directory; "
        f"istio.root_ca.key: cannot read {tmp_path / 'k.pem'}: No such file or directory"
    )


@pytest.fixture
def brought(tmp_path: Path) -> dict[str, Path]:
    mine = pki.new_root_ca(key="rsa2048")
    paths = {"cert": tmp_path / "ca.pem", "key": tmp_path / "ca-key.pem"}
    paths["cert"].write_bytes(mine.cert_pem)
    paths["key"].write_bytes(mine.key_pem)
    return paths


def check_in_time(given: MeshSpec) -> str:
    """The preflight check's message; it must come at once (a FIFO must not block it)."""
    outcome: list[BaseException | None] = []

    def check() -> None:
        try:
            trust.check_brought_root(given)
            outcome.append(None)
        except InvalidRequest as e:
            outcome.append(e)

    checker = threading.Thread(target=check, daemon=True)
    checker.start()
    checker.join(timeout=5)
    assert not checker.is_alive(), "the root CA check blocked"
    assert isinstance(outcome[0], InvalidRequest)
    return outcome[0].message


def test_a_fifo_as_the_root_key_is_refused_without_waiting(brought: dict[str, Path], tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    given = spec(root_ca={"cert": str(brought["cert"]), "key": str(fifo)})
    assert check_in_time(given) == f"istio.root_ca.key: {fifo} is not a regular file (a FIFO)"


def test_a_device_as_the_root_certificate_is_not_read(brought: dict[str, Path], tmp_path: Path) -> None:
    zero = tmp_path / "zero.pem"
    os.mknod(zero, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's own device numbers
    given = spec(root_ca={"cert": str(zero), "key": str(brought["key"])})
    assert check_in_time(given) == f"istio.root_ca.cert: {zero} is not a regular file (a character device)"


def test_root_files_outside_the_allowed_directories_are_not_read(brought: dict[str, Path]) -> None:
    """The runner reads them for whoever may start a run: any CA key there must not be usable."""
    given = spec(root_ca={"cert": "/dev/zero", "key": str(brought["key"])})
    assert check_in_time(given) == (
        "istio.root_ca.cert: /dev/zero is not under the project's deployments/ or a directory of "
        "MESHWRIGHT_SPEC_ROOTS (the runner reads only there)"
    )


def test_a_root_file_over_1_mib_is_refused(brought: dict[str, Path], tmp_path: Path) -> None:
    big = tmp_path / "big.pem"
    big.write_bytes(brought["cert"].read_bytes() + b"\n" * trust.MAX_ROOT_CA_BYTES)
    given = spec(root_ca={"cert": str(big), "key": str(brought["key"])})
    assert check_in_time(given) == f"istio.root_ca.cert: {big} is larger than 1024 KiB"


def test_the_check_passes_a_good_root_and_a_spec_without_one(brought: dict[str, Path]) -> None:
    trust.check_brought_root(spec(root_ca={"cert": str(brought["cert"]), "key": str(brought["key"])}))
    trust.check_brought_root(spec())


def test_preflight_refuses_a_bad_root_before_anything_is_created(tmp_path: Path) -> None:
    """It fails before the target is even resolved: no cluster, firewall or kubeconfig is touched."""
    (tmp_path / "k.pem").write_text("not a key")
    given = spec(root_ca={"cert": "/dev/zero", "key": str(tmp_path / "k.pem")})
    with pytest.raises(InvalidRequest, match=r"istio\.root_ca\.cert: /dev/zero is not under the project"):
        preflight(given, str(tmp_path / "kubeconfig"), "no-such-block", force=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "k.pem"]


def test_the_root_goes_with_the_mesh_unless_the_spec_keeps_it(tmp_path: Path) -> None:
    store = trust.FileStore(tmp_path / "m1" / "root-ca")
    trust.ensure_root(spec(), store)
    assert trust.forget_root(spec(keep_root=True), store) == f"kept in {store.where} (istio.keep_root)"
    assert store.load() is not None
    assert trust.forget_root(spec(), store) == f"removed from {store.where}"
    assert store.load() is None
    assert not store.directory.exists()
    assert trust.forget_root(spec(), store) == "none stored"


def test_a_root_block_is_deleted_from_the_prefect_api(harness: None) -> None:
    store = trust.BlockStore("meshwright-forgotten-root-ca")
    made, _ = trust.ensure_root(spec(), store)
    assert store.load() == made
    assert store.delete() is True
    assert store.load() is None
    assert store.delete() is False


def test_a_secret_file_s_new_directories_are_private(tmp_path: Path) -> None:
    from meshwright.files import write_secret

    write_secret(tmp_path / ".meshwright" / "m1" / "kubeconfig", b"token")
    assert stat.S_IMODE((tmp_path / ".meshwright").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / ".meshwright" / "m1").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / ".meshwright" / "m1" / "kubeconfig").stat().st_mode) == 0o600
