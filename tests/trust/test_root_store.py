"""The root is made once per mesh and found again: a 0600 file without a Prefect API, or the user's own."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

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


def test_an_unreadable_brought_root_is_one_clear_error(tmp_path: Path) -> None:
    given = spec(root_ca={"cert": str(tmp_path / "missing.pem"), "key": str(tmp_path / "k.pem")})
    with pytest.raises(InvalidRequest, match=r"istio.root_ca: cannot read .*missing.pem"):
        trust.ensure_root(given, trust.FileStore(tmp_path))
